// Package libvirt drives libvirt through the virsh client for domain
// backups and restores, and names the libvirt-host profile.
//
// Backup of a running domain (WithStableDisks):
//
//  1. virsh domuuid, and an flock on a file named by the UUID: one backup
//     per domain at a time, released by the kernel if the process dies.
//  2. Overlays of ours (NAME-DEV.dedup-TIME-RANDOM.qcow2) still on top of
//     a disk, left by a killed run, are merged with blockcommit --active
//     --pivot --shallow and removed; on a shut-off domain with qemu-img
//     commit, and the definition is pointed back at the image below.
//  3. virsh domstate and dumpxml --inactive: the state and the persistent
//     definition that a restore defines again; dumpxml of the running
//     definition names the disks actually in use.
//  4. virsh snapshot-create-as --disk-only --atomic --no-metadata, with
//     --quiesce when the guest agent answers guest-ping (configurable):
//     the guest now writes to new qcow2 overlays, uniquely named, and the
//     original images hold still.
//  5. The caller backs up the original images.
//  6. virsh blockcommit --active --pivot --shallow for every disk, even
//     when step 5 failed or was cancelled, then the overlays are removed.
//     --shallow commits into the overlay's own backing file, the disk's
//     image; without it libvirt commits into the deepest image of the
//     chain, such as a template shared with other domains. A merge that
//     fails is reported with the command that finishes it.
//
// A domain that is shut off is backed up without a snapshot.
//
// Restore (RewriteDefinition) edits the stored XML in place, byte ranges
// only, so everything not touched survives exactly: disk sources point at
// the restored images, and with a new name the UUID and MAC addresses are
// dropped so libvirt assigns fresh ones and the copy can sit beside the
// original. virsh define then registers it without starting it.
package libvirt
