//go:build !unix

package voice

// sameFilesystem cannot tell on this platform; a cross-filesystem folder shows
// as a failed publish in the router's log instead.
func sameFilesystem(a, b string) error { return nil }
