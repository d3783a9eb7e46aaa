package callfile

import "os"

// linkUnlink creates new as a hard link to old, which fails if new exists,
// then removes old. Once the link exists the file is placed; a failure to
// remove old only leaves a stray dot-file in the temporary directory, and
// reporting it as an error would invite the caller to place the call again.
func linkUnlink(old, new string) error {
	if err := os.Link(old, new); err != nil {
		return err
	}
	_ = os.Remove(old)
	return nil
}
