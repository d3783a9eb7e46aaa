//go:build !linux

package callfile

// renameNoReplace renames old to new unless new exists. Without
// renameat2, link(2) gives the same atomic existence check.
func renameNoReplace(old, new string) error { return linkUnlink(old, new) }
