"""The test ground's stand-in for kube-scheduler, the PV controller and a kubelet.

One process (``python -m devstack.kubelet``) registers fake nodes, binds pending pods to a node that
fits (node selector and affinity, taints, resources), binds claims to host directories, and runs
each bound pod's containers as processes in a ``bwrap`` sandbox with its volumes bind-mounted.
It never ships to users.
"""
