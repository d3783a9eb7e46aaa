package fax

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// testIFD is one TIFF directory as read back by the tests' own minimal
// parser, which checks the structural rules a TIFF-F reader relies on.
type testIFD struct {
	offset int
	tags   map[uint16][]uint32 // SHORT, LONG: values; RATIONAL: num, den pairs
	ascii  map[uint16]string
	order  []uint16
}

// parseTIFF walks the little-endian IFD chain of file and fails the test
// on anything a strict reader would reject: bad header, unsorted tags,
// odd offsets, values pointing outside the file, loops.
func parseTIFF(t testing.TB, file []byte) []testIFD {
	t.Helper()
	le := binary.LittleEndian
	if len(file) < 8 || string(file[:4]) != "II*\x00" {
		t.Fatalf("not a little-endian TIFF: % x", file[:min(8, len(file))])
	}
	var ifds []testIFD
	seen := map[uint32]bool{}
	for off := le.Uint32(file[4:]); off != 0; {
		if seen[off] || int(off)+2 > len(file) {
			t.Fatalf("IFD offset %d loops or is outside the file (%d bytes)", off, len(file))
		}
		seen[off] = true
		if off%2 != 0 {
			t.Errorf("IFD at odd offset %d", off)
		}
		n := int(le.Uint16(file[off:]))
		ifd := testIFD{offset: int(off), tags: map[uint16][]uint32{}, ascii: map[uint16]string{}}
		p := int(off) + 2
		if p+12*n+4 > len(file) {
			t.Fatalf("IFD at %d runs past the end", off)
		}
		for i := 0; i < n; i, p = i+1, p+12 {
			tag, typ, count := le.Uint16(file[p:]), le.Uint16(file[p+2:]), le.Uint32(file[p+4:])
			if len(ifd.order) > 0 && tag <= ifd.order[len(ifd.order)-1] {
				t.Errorf("IFD %d: tag %d after %d: not sorted ascending", len(ifds), tag, ifd.order[len(ifd.order)-1])
			}
			ifd.order = append(ifd.order, tag)
			size := map[uint16]int{typeASCII: 1, typeShort: 2, typeLong: 4, typeRational: 8}[typ]
			if size == 0 {
				t.Fatalf("tag %d: unexpected type %d", tag, typ)
			}
			data := file[p+8 : p+12]
			if total := size * int(count); total > 4 {
				vo := int(le.Uint32(file[p+8:]))
				if vo%2 != 0 || vo+total > len(file) {
					t.Fatalf("tag %d: value offset %d (len %d) odd or outside the file", tag, vo, total)
				}
				data = file[vo : vo+total]
			}
			switch typ {
			case typeASCII:
				s := string(data[:count])
				if !strings.HasSuffix(s, "\x00") {
					t.Errorf("tag %d: ASCII value not NUL-terminated", tag)
				}
				ifd.ascii[tag] = strings.TrimSuffix(s, "\x00")
			case typeShort:
				for j := 0; j < int(count); j++ {
					ifd.tags[tag] = append(ifd.tags[tag], uint32(le.Uint16(data[2*j:])))
				}
			case typeLong, typeRational:
				for j := 0; j < int(count)*size/4; j++ {
					ifd.tags[tag] = append(ifd.tags[tag], le.Uint32(data[4*j:]))
				}
			}
		}
		ifds = append(ifds, ifd)
		off = le.Uint32(file[p:])
	}
	return ifds
}

// strip returns the one strip of ifd; the writer makes one per page.
func (ifd testIFD) strip(t testing.TB, file []byte) []byte {
	t.Helper()
	if n := len(ifd.tags[tagStripOffsets]); n != 1 {
		t.Fatalf("%d strips; want 1", n)
	}
	return ifd.strips(t, file)
}

// strips returns the concatenated strips of ifd.
func (ifd testIFD) strips(t testing.TB, file []byte) []byte {
	t.Helper()
	offs, counts := ifd.tags[tagStripOffsets], ifd.tags[tagStripByteCounts]
	if len(offs) == 0 || len(offs) != len(counts) {
		t.Fatalf("strip offsets %v counts %v", offs, counts)
	}
	var out []byte
	for i := range offs {
		if int(offs[i])+int(counts[i]) > len(file) {
			t.Fatalf("strip %d at %d+%d outside the %d-byte file", i, offs[i], counts[i], len(file))
		}
		out = append(out, file[offs[i]:offs[i]+counts[i]]...)
	}
	return out
}

// dump renders the directories as text for the golden file.
func dump(ifds []testIFD) string {
	var b strings.Builder
	for i, ifd := range ifds {
		fmt.Fprintf(&b, "IFD %d at %d\n", i, ifd.offset)
		tags := append([]uint16(nil), ifd.order...)
		sort.Slice(tags, func(a, b int) bool { return tags[a] < tags[b] })
		for _, tag := range tags {
			if s, ok := ifd.ascii[tag]; ok {
				fmt.Fprintf(&b, "  %d = %q\n", tag, s)
			} else {
				fmt.Fprintf(&b, "  %d = %v\n", tag, ifd.tags[tag])
			}
		}
	}
	return b.String()
}
