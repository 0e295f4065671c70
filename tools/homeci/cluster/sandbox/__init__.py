"""Running daemons contained on a Linux host: what the real node (provider ``netns``) and the kind
provider's own Docker engine share.

``box`` (:class:`~homeci.cluster.sandbox.box.Sandbox`: one state directory, one cgroup parent, a holder
process owning a network and a mount namespace, a forwarder from the host's 127.0.0.1 into the namespace,
daemons started inside by pid), ``holder`` and ``forward`` (the two stdlib-only programs it starts),
``cgroups`` (the parent in every hierarchy) and ``procs`` (processes by pid, used by every provider).
"""
