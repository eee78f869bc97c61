package libvirt

// HostProfile names the host profile for KVM hypervisors.
const HostProfile = "libvirt-host"

// HostPaths lists what the libvirt-host profile backs up with the
// directory source: libvirt's own configuration (domain and network
// definitions, storage pools, hooks), the host's network configuration in
// both the legacy network-scripts and NetworkManager keyfile forms, name
// resolution, mounts and the firewall. Paths a host lacks are skipped by
// the caller.
func HostPaths() []string {
	return []string{
		"/etc/libvirt",
		"/etc/sysconfig/network-scripts",
		"/etc/sysconfig/network",
		"/etc/NetworkManager/system-connections",
		"/etc/hosts",
		"/etc/fstab",
		"/etc/firewalld",
	}
}
