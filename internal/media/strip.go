package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// This file copies PNG, GIF and WebP files without their metadata blocks,
// byte for byte otherwise, and reads a JPEG's EXIF orientation. Each
// copier walks the format's block structure from the start and stops at
// its end marker: whatever is appended after the image is left behind
// too. A structure that does not parse is refused as damaged.

// pngKeep lists the PNG chunks copied: the critical ones, those that
// change how the pixels look (transparency, colour space, pixel size,
// background) and APNG's animation chunks. Text (tEXt, zTXt, iTXt), eXIf,
// tIME and private chunks stay behind.
var pngKeep = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true,
	"tRNS": true, "gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "sBIT": true,
	"pHYs": true, "bKGD": true, "acTL": true, "fcTL": true, "fdAT": true,
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func stripPNG(out *os.File, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(out, 64<<10)
	sig := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(br, sig); err != nil || !bytes.Equal(sig, pngSignature) {
		return refuse("is a damaged png image")
	}
	bw.Write(sig)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return refuse("is a damaged png image: it ends before IEND")
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n > 1<<31-1 {
			return refuse("is a damaged png image")
		}
		typ := string(hdr[4:8])
		dst := io.Discard
		if pngKeep[typ] {
			bw.Write(hdr[:])
			dst = bw
		}
		if _, err := io.CopyN(dst, br, n+4); err != nil { // data and CRC
			return copyErr("png", err)
		}
		if typ == "IEND" {
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

// stripGIF copies a GIF without its comments and application extensions
// other than the looping ones (NETSCAPE2.0, ANIMEXTS1.0): XMP travels in
// an application extension.
func stripGIF(out *os.File, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(out, 64<<10)
	damaged := refuse("is a damaged gif image")
	// Header and logical screen descriptor, then the global colour table.
	var hdr [13]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return damaged
	}
	bw.Write(hdr[:])
	if hdr[10]&0x80 != 0 {
		if _, err := io.CopyN(bw, br, 3<<(hdr[10]&7+1)); err != nil {
			return copyErr("gif", err)
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return damaged
		}
		switch b {
		case 0x3B: // trailer
			bw.WriteByte(b)
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write gif: %w", err)
			}
			return nil
		case 0x2C: // image: descriptor, local colour table, LZW data
			var desc [9]byte
			if _, err := io.ReadFull(br, desc[:]); err != nil {
				return damaged
			}
			bw.WriteByte(b)
			bw.Write(desc[:])
			if desc[8]&0x80 != 0 {
				if _, err := io.CopyN(bw, br, 3<<(desc[8]&7+1)); err != nil {
					return copyErr("gif", err)
				}
			}
			minCode, err := br.ReadByte()
			if err != nil {
				return damaged
			}
			bw.WriteByte(minCode)
			if err := copySubBlocks(bw, br); err != nil {
				return err
			}
		case 0x21: // extension
			label, err := br.ReadByte()
			if err != nil {
				return damaged
			}
			keep := label == 0xF9 || label == 0x01 // graphic control, plain text
			var first []byte
			if label == 0xFF {
				// The first sub-block names the application.
				n, err := br.ReadByte()
				if err != nil {
					return damaged
				}
				first = make([]byte, n)
				if _, err := io.ReadFull(br, first); err != nil {
					return damaged
				}
				id := string(first)
				keep = id == "NETSCAPE2.0" || id == "ANIMEXTS1.0"
				first = append([]byte{n}, first...)
			}
			var dst io.Writer = io.Discard
			if keep {
				bw.WriteByte(b)
				bw.WriteByte(label)
				bw.Write(first)
				dst = bw
			}
			if err := copySubBlocks(dst, br); err != nil {
				return err
			}
		default:
			return damaged
		}
	}
}

// copySubBlocks copies GIF data sub-blocks up to and including the
// terminating empty one.
func copySubBlocks(w io.Writer, br *bufio.Reader) error {
	for {
		n, err := br.ReadByte()
		if err != nil {
			return refuse("is a damaged gif image")
		}
		if _, err := w.Write([]byte{n}); err != nil {
			return fmt.Errorf("write gif: %w", err)
		}
		if n == 0 {
			return nil
		}
		if _, err := io.CopyN(w, br, int64(n)); err != nil {
			return copyErr("gif", err)
		}
	}
}

// stripWebP copies a WebP file without its EXIF and XMP chunks, clearing
// their flags in the VP8X header, and reports whether it is animated.
func stripWebP(out *os.File, r io.Reader) (animated bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	damaged := refuse("is a damaged webp image")
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WEBP" {
		return false, damaged
	}
	left := int64(binary.LittleEndian.Uint32(hdr[4:8])) - 4 // after "WEBP"
	bw := bufio.NewWriterSize(out, 64<<10)
	bw.Write(hdr[:]) // its size is patched below
	written := int64(4)
	for left >= 8 {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			return false, damaged
		}
		n := int64(binary.LittleEndian.Uint32(ch[4:]))
		padded := n + n&1
		if padded+8 > left {
			return false, damaged
		}
		left -= padded + 8
		switch string(ch[:4]) {
		case "EXIF", "XMP ":
			if _, err := io.CopyN(io.Discard, br, padded); err != nil {
				return false, copyErr("webp", err)
			}
			continue
		case "VP8X":
			if n != 10 {
				return false, damaged
			}
			var x [10]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return false, damaged
			}
			animated = x[0]&(1<<1) != 0
			x[0] &^= 1<<2 | 1<<3 // XMP and EXIF present
			bw.Write(ch[:])
			bw.Write(x[:])
			written += 18
			continue
		}
		bw.Write(ch[:])
		if _, err := io.CopyN(bw, br, padded); err != nil {
			return false, copyErr("webp", err)
		}
		written += 8 + padded
	}
	if err := bw.Flush(); err != nil {
		return false, fmt.Errorf("write webp: %w", err)
	}
	var size [4]byte
	binary.LittleEndian.PutUint32(size[:], uint32(written))
	if _, err := out.WriteAt(size[:], 4); err != nil {
		return false, fmt.Errorf("write webp: %w", err)
	}
	return animated, nil
}

// copyErr is a copy that failed: a file ending early is damaged, anything
// else a fault of ours.
func copyErr(format string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return refuse("is a damaged %s image", format)
	}
	return fmt.Errorf("copy %s: %w", format, err)
}

// jpegOrientation reads the orientation tag (1 to 8) of a JPEG's EXIF
// segment, or 1 when it has none or it does not parse.
func jpegOrientation(r io.Reader) int {
	br := bufio.NewReader(r)
	var soi [2]byte
	if _, err := io.ReadFull(br, soi[:]); err != nil || soi != [2]byte{0xFF, 0xD8} {
		return 1
	}
	for {
		b, err := br.ReadByte()
		if err != nil || b != 0xFF {
			return 1
		}
		marker, err := br.ReadByte()
		for err == nil && marker == 0xFF { // fill bytes
			marker, err = br.ReadByte()
		}
		if err != nil || marker == 0xDA || marker == 0xD9 { // start of scan, end
			return 1
		}
		if marker >= 0xD0 && marker <= 0xD7 || marker == 0x01 {
			continue // no length
		}
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 1
		}
		n := int(binary.BigEndian.Uint16(l[:])) - 2
		if n < 0 {
			return 1
		}
		seg := make([]byte, n)
		if _, err := io.ReadFull(br, seg); err != nil {
			return 1
		}
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return exifOrientation(seg[6:])
		}
	}
}

// exifOrientation finds tag 0x0112 in a TIFF structure's first IFD.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int(bo.Uint32(tiff[4:]))
	if off < 8 || off+2 > len(tiff) {
		return 1
	}
	count := int(bo.Uint16(tiff[off:]))
	for i := range count {
		e := off + 2 + 12*i
		if e+12 > len(tiff) {
			return 1
		}
		if bo.Uint16(tiff[e:]) == 0x0112 && bo.Uint16(tiff[e+2:]) == 3 {
			if v := int(bo.Uint16(tiff[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}
