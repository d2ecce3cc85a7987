"""The one set of service-config renderers (Patroni, HAProxy, Redis, Sentinel, etcd, launchd, systemd): bootstrap and the lab both render through it."""
