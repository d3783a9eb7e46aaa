package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxStdinText caps a text read from standard input: far beyond the longest
// concatenated SMS (255 parts), so a stray pipe cannot exhaust memory.
const maxStdinText = 1 << 20

// textOrStdin returns text, or what standard input holds when text is "-".
func textOrStdin(e *env, text string) (string, error) {
	if text != "-" {
		return text, nil
	}
	in := e.stdin
	if in == nil {
		in = os.Stdin
	}
	b, err := io.ReadAll(io.LimitReader(in, maxStdinText+1))
	if err != nil {
		return "", fmt.Errorf("read text from stdin: %w", err)
	}
	if len(b) > maxStdinText {
		return "", fmt.Errorf("text on stdin is longer than %d bytes", maxStdinText)
	}
	return string(b), nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so a reader (a fax spool, a player, Asterisk) never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
