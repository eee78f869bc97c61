// Package diff compares two snapshot trees.
//
// Both trees are walked together, one directory at a time, merging their
// sorted node lists by name. A subtree whose blob ID is the same on both
// sides is identical by construction (trees are content-addressed and
// encoded canonically), so it is skipped without being loaded: comparing
// two snapshots of a large, mostly unchanged tree costs one tree load per
// directory on the path to each change.
//
// Every difference is reported to a callback in path order, parents before
// children. A file is modified in content when its chunk list differs, in
// metadata when the restorable attributes differ (mode, owner, mtime,
// xattrs); identity fields that no restore can reproduce (device, inode,
// link count, ctime, atime) are ignored. Added and removed directories are
// expanded into their entries unless the callback returns SkipDir.
package diff
