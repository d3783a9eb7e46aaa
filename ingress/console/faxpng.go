package console

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"

	"github.com/hhrutter/tiff"
)

// Bounds on what is read of a fax file: render/fax writes a few hundred KiB
// for a long message; anything far beyond is not ours.
const (
	maxFaxFile  = 32 << 20
	maxFaxPages = 200
)

// faxIFDs returns the offsets of the pages (image file directories) of a TIFF
// file, in order. It follows the chain of "next IFD" offsets and stops at a
// loop or at maxFaxPages.
func faxIFDs(data []byte) ([]int64, error) {
	if len(data) < 8 {
		return nil, errors.New("tiff: too short")
	}
	var bo binary.ByteOrder
	switch string(data[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return nil, errors.New("tiff: not a TIFF file")
	}
	var out []int64
	seen := map[uint32]bool{}
	off := bo.Uint32(data[4:8])
	for off != 0 {
		if seen[off] || len(out) >= maxFaxPages {
			break
		}
		seen[off] = true
		if int64(off)+2 > int64(len(data)) {
			return nil, fmt.Errorf("tiff: page %d's directory lies beyond the file", len(out)+1)
		}
		n := int64(bo.Uint16(data[off:]))
		next := int64(off) + 2 + 12*n
		if next+4 > int64(len(data)) {
			return nil, fmt.Errorf("tiff: page %d's directory is cut short", len(out)+1)
		}
		out = append(out, int64(off))
		off = bo.Uint32(data[next:])
	}
	if len(out) == 0 {
		return nil, errors.New("tiff: no pages")
	}
	return out, nil
}

func readFax(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFaxFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFaxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFaxFile)
	}
	return data, nil
}

func faxPageCount(path string) (int, error) {
	data, err := readFax(path)
	if err != nil {
		return 0, err
	}
	ifds, err := faxIFDs(data)
	return len(ifds), err
}

// faxPagePNG draws page n (from 1) of a fax TIFF (render/fax writes Group 3
// CCITT, which hhrutter/tiff decodes) as a PNG.
func faxPagePNG(path string, n int) ([]byte, error) {
	data, err := readFax(path)
	if err != nil {
		return nil, err
	}
	return tiffPagePNG(data, n)
}

func tiffPagePNG(data []byte, n int) ([]byte, error) {
	ifds, err := faxIFDs(data)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > len(ifds) {
		return nil, fmt.Errorf("tiff: no page %d (it has %d)", n, len(ifds))
	}
	img, err := tiff.DecodeAt(bytes.NewReader(data), ifds[n-1])
	if err != nil {
		return nil, fmt.Errorf("tiff: page %d: %w", n, err)
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
