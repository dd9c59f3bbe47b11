package media

import (
	"encoding/binary"
	"io"
	"unicode/utf16"
)

// cfbMagic opens every OLE2 compound file ([MS-CFB]), the container of the
// legacy .doc, .xls and .ppt formats, but also of installers (.msi) and
// Outlook messages, so the streams inside tell which it is.
var cfbMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// sniffCFB accepts a compound file holding a Word, Excel or PowerPoint
// document without macros.
func sniffCFB(r io.ReaderAt, size int64) (kind, error) {
	names, ok := cfbNames(r, size)
	if !ok {
		return kind{}, refuse("is a damaged OLE2 compound file")
	}
	switch {
	case names["Macros"] || names["_VBA_PROJECT_CUR"] || names["VBA"]:
		return kind{}, refuse("is an Office document with macros, which are not allowed")
	case names["WordDocument"]:
		return kindDOC, nil
	case names["Workbook"] || names["Book"]:
		return kindXLS, nil
	case names["PowerPoint Document"]:
		return kindPPT, nil
	}
	return kind{}, refuse("is an OLE2 compound file that is not a Word, Excel or PowerPoint document, which is not allowed: %s", allowedWords)
}

// Sector numbers above this are markers (end of chain, free, FAT, DIFAT).
const cfbMaxSector = 0xFFFFFFFA

// cfbNames lists the names of the storages and streams in a compound
// file's directory. It reads the header, the sector allocation table and
// the directory chain, with every count and chain bounded by the file's
// size, so a crafted file cannot make it loop or allocate much; ok is
// false for anything malformed.
func cfbNames(r io.ReaderAt, size int64) (names map[string]bool, ok bool) {
	var hdr [512]byte
	if size < int64(len(hdr)) {
		return nil, false
	}
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, false
	}
	le := binary.LittleEndian
	shift := le.Uint16(hdr[0x1E:])
	if shift != 9 && shift != 12 {
		return nil, false
	}
	secSize := int64(1) << shift
	sectors := (size - secSize + secSize - 1) / secSize // sectors after the header's
	read := func(sec uint32) ([]byte, bool) {
		if int64(sec) >= sectors {
			return nil, false
		}
		buf := make([]byte, secSize)
		n, err := r.ReadAt(buf, (int64(sec)+1)*secSize)
		if err != nil && !(err == io.EOF && n > 0) {
			return nil, false
		}
		return buf, true
	}

	// The FAT's own sectors: 109 listed in the header, the rest in the
	// DIFAT chain.
	numFAT := int64(le.Uint32(hdr[0x2C:]))
	if numFAT > sectors {
		return nil, false
	}
	var fatSecs []uint32
	for i := 0; i < 109 && int64(len(fatSecs)) < numFAT; i++ {
		fatSecs = append(fatSecs, le.Uint32(hdr[0x4C+4*i:]))
	}
	next := le.Uint32(hdr[0x44:])
	for hops := int64(0); int64(len(fatSecs)) < numFAT && next < cfbMaxSector; hops++ {
		if hops > sectors {
			return nil, false
		}
		buf, ok := read(next)
		if !ok {
			return nil, false
		}
		per := int(secSize/4) - 1
		for i := 0; i < per && int64(len(fatSecs)) < numFAT; i++ {
			fatSecs = append(fatSecs, le.Uint32(buf[4*i:]))
		}
		next = le.Uint32(buf[4*per:])
	}
	var fat []uint32
	for _, s := range fatSecs {
		buf, ok := read(s)
		if !ok {
			return nil, false
		}
		for i := 0; i < len(buf); i += 4 {
			fat = append(fat, le.Uint32(buf[i:]))
		}
	}

	// The directory: 128-byte entries along its chain of sectors.
	names = map[string]bool{}
	sec := le.Uint32(hdr[0x30:])
	for hops := int64(0); sec < cfbMaxSector; hops++ {
		if hops > sectors || int(sec) >= len(fat) {
			return nil, false
		}
		buf, ok := read(sec)
		if !ok {
			return nil, false
		}
		for off := 0; off+128 <= len(buf); off += 128 {
			e := buf[off : off+128]
			n := int(le.Uint16(e[0x40:]))
			if e[0x42] == 0 || n < 2 || n > 64 || n%2 != 0 {
				continue // unused entry
			}
			u := make([]uint16, n/2-1) // without the terminating NUL
			for i := range u {
				u[i] = le.Uint16(e[2*i:])
			}
			names[string(utf16.Decode(u))] = true
		}
		sec = fat[sec]
	}
	return names, true
}
