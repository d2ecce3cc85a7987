"""Bootstrap: our YAML playbooks run over SSH as pyinfra operations, making each node what the inventory says."""
