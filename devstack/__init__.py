"""The local test ground: a real kube-apiserver + etcd, a local kubelet, real Keycloak and Toxiproxy.

Development only: this package is not part of the primehub_spawner wheel.
"""
