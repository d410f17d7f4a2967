"""The local test ground: a real kube-apiserver + etcd, a local kubelet and (later) an identity server.

Development only: this package is not part of the primehub_spawner wheel.
"""
