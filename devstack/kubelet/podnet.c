/* Pod networking for the test ground's local kubelet, loaded with LD_PRELOAD inside each pod.
 *
 * Pods share the host's network, so each gets its own loopback address as pod IP
 * (DEVSTACK_POD_IP). A wildcard bind (0.0.0.0 or ::) is narrowed to that address, which lets many
 * notebook servers listen on port 8888 at once, each reachable at <pod IP>:8888. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *pod_ip = getenv("DEVSTACK_POD_IP");
    struct in_addr ip4;
    if (!pod_ip || !addr || inet_pton(AF_INET, pod_ip, &ip4) != 1) return real_bind(fd, addr, len);

    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in narrowed;
        memcpy(&narrowed, addr, sizeof narrowed);
        if (narrowed.sin_addr.s_addr == htonl(INADDR_ANY)) {
            narrowed.sin_addr = ip4;
            return real_bind(fd, (struct sockaddr *)&narrowed, sizeof narrowed);
        }
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 narrowed;
        int v6only = 0;
        socklen_t optlen = sizeof v6only;
        memcpy(&narrowed, addr, sizeof narrowed);
        getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen);
        if (!v6only && memcmp(&narrowed.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0) {
            /* a dual-stack wildcard becomes the IPv4-mapped pod address */
            memset(&narrowed.sin6_addr, 0, sizeof narrowed.sin6_addr);
            narrowed.sin6_addr.s6_addr[10] = 0xff;
            narrowed.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&narrowed.sin6_addr.s6_addr[12], &ip4, 4);
            return real_bind(fd, (struct sockaddr *)&narrowed, sizeof narrowed);
        }
    }
    return real_bind(fd, addr, len);
}
