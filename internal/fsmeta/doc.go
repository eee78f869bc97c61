// Package fsmeta describes one filesystem entry's metadata and captures it
// from the live filesystem with full fidelity.
//
// Meta is what the repository stores for every entry of a directory tree: the
// type, the full permission word (including setuid, setgid and sticky), the
// numeric owner plus the owner's names on the source host, nanosecond times,
// the identity fields used for change and hardlink detection, a symlink's raw
// target and every extended attribute. POSIX ACLs and SELinux labels are not
// modelled separately: the kernel exposes them as the system.posix_acl_* and
// security.selinux attributes, so keeping all attributes as opaque bytes keeps
// them exactly.
//
// Lstat never follows a final symlink. Attribute lists and values are read
// with buffers that grow when the kernel reports ERANGE, because an attribute
// may change size between the size query and the read.
package fsmeta
