// Package mediatest makes the files that upload tests send: photos with
// GPS in their EXIF, decompression bombs, Office documents. Tests only. It
// imports the standard library only.
package mediatest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"unicode/utf16"
)

// Gradient is a w×h picture whose top-left corner is red and the rest
// shades of blue, so that a test can tell which way up it is.
func Gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{B: uint8(255 * (x + y) / (w + h)), A: 255})
		}
	}
	for y := range max(1, h/4) {
		for x := range max(1, w/4) {
			img.Set(x, y, color.RGBA{R: 255, A: 255})
		}
	}
	return img
}

// GPSMarker is a string inside the EXIF of JPEGWithGPS, in the GPS
// directory's processing-method tag, to look for in what was stored.
const GPSMarker = "GPS-TEST-MARKER"

// JPEGWithGPS is a w×h JPEG whose EXIF segment holds an orientation tag
// (1 to 8) and a GPS directory placing it at 51.5° N.
func JPEGWithGPS(w, h, orientation int) []byte {
	var pic bytes.Buffer
	if err := jpeg.Encode(&pic, Gradient(w, h), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return WithEXIF(pic.Bytes(), orientation)
}

// WithEXIF gives a JPEG the EXIF segment of JPEGWithGPS.
func WithEXIF(jpg []byte, orientation int) []byte {
	return withSegment(jpg, 0xE1, append([]byte("Exif\x00\x00"), exifTIFF(orientation)...))
}

// exifTIFF builds a little-endian TIFF structure: IFD0 with Orientation
// and a GPS IFD pointer; the GPS IFD with latitude ref, latitude and a
// processing method holding GPSMarker.
func exifTIFF(orientation int) []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, 'I', 'I', 42, 0, 8, 0, 0, 0)
	entry := func(tag, typ uint16, count uint32, value uint32) {
		b = le.AppendUint16(b, tag)
		b = le.AppendUint16(b, typ)
		b = le.AppendUint32(b, count)
		b = le.AppendUint32(b, value)
	}
	// IFD0 at 8: 2 entries, then the next-IFD offset: ends at 8+2+24+4 = 38.
	const gpsIFD = 38
	b = le.AppendUint16(b, 2)
	entry(0x0112, 3, 1, uint32(orientation))
	entry(0x8825, 4, 1, gpsIFD)
	b = le.AppendUint32(b, 0)
	// GPS IFD at 38: 3 entries, ends at 38+2+36+4 = 80; the latitude's
	// three rationals (24 bytes) at 80, the method at 104.
	const latAt, methodAt = 80, 104
	method := append([]byte("ASCII\x00\x00\x00"), GPSMarker...)
	b = le.AppendUint16(b, 3)
	entry(0x0001, 2, 2, uint32('N'))
	entry(0x0002, 5, 3, latAt)
	entry(0x001B, 7, uint32(len(method)), methodAt)
	b = le.AppendUint32(b, 0)
	for _, r := range [][2]uint32{{51, 1}, {30, 1}, {0, 1}} {
		b = le.AppendUint32(b, r[0])
		b = le.AppendUint32(b, r[1])
	}
	return append(b, method...)
}

// withSegment inserts a marker segment right after a JPEG's SOI.
func withSegment(jpg []byte, marker byte, data []byte) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(data)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, data...)
	return append(out, jpg[2:]...)
}

// JPEGSegments lists the markers of a JPEG's segments before its first
// scan (0xE1 is APP1, where EXIF and XMP live).
func JPEGSegments(jpg []byte) []byte {
	var out []byte
	for i := 2; i+4 <= len(jpg) && jpg[i] == 0xFF; {
		m := jpg[i+1]
		out = append(out, m)
		if m == 0xDA {
			break
		}
		i += 2 + int(binary.BigEndian.Uint16(jpg[i+2:]))
	}
	return out
}

// PNG is a w×h PNG of Gradient with a tEXt chunk holding text.
func PNG(w, h int, text string) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, Gradient(w, h)); err != nil {
		panic(err)
	}
	p := b.Bytes()
	// After the signature (8) and IHDR (4+4+13+4).
	at := 8 + 25
	chunk := pngChunk("tEXt", append([]byte("Comment\x00"), text...))
	return append(append(append([]byte{}, p[:at]...), chunk...), p[at:]...)
}

// PNGBomb is a PNG whose header claims w×h pixels, followed by a few bytes
// of image data: decoding it would allocate w×h×4 bytes.
func PNGBomb(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(out, pngChunk("IEND", nil)...)
}

func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc(append([]byte(typ), data...)))
}

// crc is PNG's CRC-32 (the IEEE polynomial), written out so that the
// package needs nothing but the standard library's basics.
func crc(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xEDB88320
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

// JPEGBomb is the start of a baseline JPEG whose frame header claims w×h
// pixels, up to its first scan.
func JPEGBomb(w, h uint16) []byte {
	sof := []byte{8, 0, 0, 0, 0, 1, 1, 0x11, 0}
	binary.BigEndian.PutUint16(sof[1:], h)
	binary.BigEndian.PutUint16(sof[3:], w)
	out := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, byte(len(sof) + 2)}
	out = append(out, sof...)
	return append(out, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0, 0, 0, 0, 0xFF, 0xD9)
}

// OOXML is a ZIP with [Content_Types].xml and one part per name, as Word
// ("word/document.xml"), Excel ("xl/workbook.xml") or PowerPoint write.
func OOXML(names ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range append([]string{"[Content_Types].xml"}, names...) {
		w, err := zw.Create(n)
		if err != nil {
			panic(err)
		}
		_, _ = w.Write([]byte(`<?xml version="1.0"?><x/>`))
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// CFB is a minimal OLE2 compound file (512-byte sectors: the FAT in
// sector 0, the directory in sector 1) whose directory holds the root and
// streams with the names given (at most three).
func CFB(names ...string) []byte {
	le := binary.LittleEndian
	out := make([]byte, 512*3)
	h := out[:512]
	copy(h, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1})
	le.PutUint16(h[0x18:], 0x3E)
	le.PutUint16(h[0x1A:], 3)
	le.PutUint16(h[0x1C:], 0xFFFE)
	le.PutUint16(h[0x1E:], 9)
	le.PutUint16(h[0x20:], 6)
	le.PutUint32(h[0x2C:], 1)          // FAT sectors
	le.PutUint32(h[0x30:], 1)          // first directory sector
	le.PutUint32(h[0x38:], 4096)       // mini stream cutoff
	le.PutUint32(h[0x3C:], 0xFFFFFFFE) // no mini FAT
	le.PutUint32(h[0x44:], 0xFFFFFFFE) // no DIFAT sectors
	for i := range 109 {
		le.PutUint32(h[0x4C+4*i:], 0xFFFFFFFF)
	}
	le.PutUint32(h[0x4C:], 0) // the FAT is sector 0
	fat := out[512:1024]
	for i := 0; i < 512; i += 4 {
		le.PutUint32(fat[i:], 0xFFFFFFFF)
	}
	le.PutUint32(fat[0:], 0xFFFFFFFD) // sector 0: FAT
	le.PutUint32(fat[4:], 0xFFFFFFFE) // sector 1: end of the directory chain
	dir := out[1024:]
	for i, n := range append([]string{"Root Entry"}, names...) {
		e := dir[128*i : 128*(i+1)]
		u := utf16.Encode([]rune(n))
		for j, c := range u {
			le.PutUint16(e[2*j:], c)
		}
		le.PutUint16(e[0x40:], uint16(2*len(u)+2))
		e[0x42] = 2 // stream
		if i == 0 {
			e[0x42] = 5 // root
		}
	}
	return out
}

// Zip is a plain ZIP archive of empty files with the names given.
func Zip(names ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range names {
		if _, err := zw.Create(n); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Two 1×1 WebP files of the kind browsers' feature tests use: one in the
// extended format with alpha, one animated.
const (
	webpAlpha    = "UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA=="
	webpAnimated = "UklGRlIAAABXRUJQVlA4WAoAAAASAAAAAAAAAAAAQU5JTQYAAAD/////AABBTk1GJgAAAAAAAAAAAAAAAAAAAGQAAABWUDhMDQAAAC8AAAAQBxAREYiI/gcA"
)

// WebPWithEXIF is a 1×1 WebP with an EXIF chunk (and its flag set in the
// VP8X header) holding GPSMarker; animated makes it the animated one.
func WebPWithEXIF(animated bool) []byte {
	src := webpAlpha
	if animated {
		src = webpAnimated
	}
	b, err := base64.StdEncoding.DecodeString(src)
	if err != nil {
		panic(err)
	}
	b[20] |= 1 << 3 // the VP8X flags byte: EXIF present
	data := append([]byte("Exif\x00\x00"), exifTIFF(1)...)
	chunk := binary.LittleEndian.AppendUint32([]byte("EXIF"), uint32(len(data)))
	chunk = append(chunk, data...)
	if len(data)%2 == 1 {
		chunk = append(chunk, 0)
	}
	b = append(b, chunk...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}
