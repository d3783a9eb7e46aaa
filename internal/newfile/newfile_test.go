package newfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	f, err := Create(p, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "hello" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (0666 less the umask 022)", st.Mode().Perm())
	}
	// It never replaces a file.
	if _, err := Create(p, 0o666); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}
	if _, err := Create(filepath.Join(dir, "missing", "b"), 0o666); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Create in a missing folder: %v", err)
	}
}

func TestCreateTemp(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 100 {
		f, err := CreateTemp(dir, ".callfile-", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		name := filepath.Base(f.Name())
		if !strings.HasPrefix(name, ".callfile-") || seen[name] || filepath.Dir(f.Name()) != dir {
			t.Fatalf("name %q (seen before: %v)", f.Name(), seen[name])
		}
		seen[name] = true
		if st, _ := os.Stat(f.Name()); st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	}
}

// TestSetMode: the file ends with exactly the mode asked for, whether or not
// the umask took bits away (umask is read once, so this test changes it for
// the process only around its own files and reads the value the package saw).
func TestSetMode(t *testing.T) {
	mask, ok := umask()
	if !ok {
		t.Skip("no Umask line in /proc/self/status: SetMode always calls fchmod")
	}
	old := syscall.Umask(0)
	syscall.Umask(old)
	if fs.FileMode(old) != mask {
		t.Fatalf("read umask %o, the process has %o", mask, old)
	}
	dir := t.TempDir()
	for i, mode := range []fs.FileMode{0o600, 0o640, 0o660, 0o664, 0o666} {
		f, err := Create(filepath.Join(dir, strconv.Itoa(i)), mode)
		if err != nil {
			t.Fatal(err)
		}
		if err := SetMode(f, mode); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st, _ := os.Stat(f.Name()); st.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v (umask %o)", st.Mode().Perm(), mode, mask)
		}
	}
}
