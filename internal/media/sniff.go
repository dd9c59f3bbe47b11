package media

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// kind is what sniffing found: the type to serve and, for raster images,
// the image package's format name.
type kind struct {
	contentType string
	ext         string
	image       string // "jpeg", "png", "gif", "webp"; "" for other files
}

// The allowed types other than images.
var (
	kindPDF  = kind{contentType: "application/pdf", ext: ".pdf"}
	kindText = kind{contentType: "text/plain; charset=utf-8", ext: ".txt"}
	kindDOCX = kind{contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ext: ".docx"}
	kindXLSX = kind{contentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ext: ".xlsx"}
	kindPPTX = kind{contentType: "application/vnd.openxmlformats-officedocument.presentationml.presentation", ext: ".pptx"}
	kindDOC  = kind{contentType: "application/msword", ext: ".doc"}
	kindXLS  = kind{contentType: "application/vnd.ms-excel", ext: ".xls"}
	kindPPT  = kind{contentType: "application/vnd.ms-powerpoint", ext: ".ppt"}
)

var imageKinds = map[string]kind{
	"image/jpeg": {contentType: "image/jpeg", ext: ".jpg", image: "jpeg"},
	"image/png":  {contentType: "image/png", ext: ".png", image: "png"},
	"image/gif":  {contentType: "image/gif", ext: ".gif", image: "gif"},
	"image/webp": {contentType: "image/webp", ext: ".webp", image: "webp"},
}

// allowedWords ends every refusal of a type, so that the sender learns
// what would have done.
const allowedWords = "send a JPEG, PNG, GIF or WebP image, a PDF, a Word, Excel or PowerPoint document, or UTF-8 plain text"

// sniff tells f's type from its bytes: net/http's sniffing algorithm
// (https://mimesniff.spec.whatwg.org) for the first 512, then a closer
// look where that says too little: a ZIP must be an Office Open XML
// document, an OLE2 compound file a Word, Excel or PowerPoint one, and
// text must be UTF-8 throughout and not markup.
func sniff(f *os.File, size int64) (kind, error) {
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return kind{}, fmt.Errorf("read upload: %w", err)
	}
	head = head[:n]
	ct := http.DetectContentType(head)
	mt, params, _ := mime.ParseMediaType(ct)
	if k, ok := imageKinds[mt]; ok {
		return k, nil
	}
	switch {
	case mt == "application/pdf":
		return kindPDF, nil
	case mt == "application/zip":
		return sniffOOXML(f, size)
	case bytes.HasPrefix(head, cfbMagic):
		return sniffCFB(f, size)
	case mt == "text/plain" && strings.EqualFold(params["charset"], "utf-8"):
		return sniffText(f)
	case mt == "text/plain":
		return kind{}, refuse("is text in %s; only UTF-8 text is allowed", params["charset"])
	}
	return kind{}, refuse("is of type %s, which is not allowed: %s", mt, allowedWords)
}

// sniffOOXML accepts a ZIP that is a Word, Excel or PowerPoint document
// without macros. It reads the central directory only: no entry is
// decompressed, so a ZIP bomb costs nothing.
func sniffOOXML(f *os.File, size int64) (kind, error) {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return kind{}, refuse("is a damaged ZIP archive")
	}
	var types bool
	var found *kind
	for _, e := range zr.File {
		name := e.Name
		switch {
		case name == "[Content_Types].xml":
			types = true
		case strings.HasSuffix(strings.ToLower(name), "vbaproject.bin"):
			return kind{}, refuse("is an Office document with macros, which are not allowed")
		case found == nil && strings.HasPrefix(name, "word/"):
			found = &kindDOCX
		case found == nil && strings.HasPrefix(name, "xl/"):
			found = &kindXLSX
		case found == nil && strings.HasPrefix(name, "ppt/"):
			found = &kindPPTX
		}
	}
	if !types || found == nil {
		return kind{}, refuse("is a ZIP archive, which is not allowed: %s", allowedWords)
	}
	return *found, nil
}

// sniffText accepts valid UTF-8 without NUL characters that does not open
// with markup: HTML, SVG and XML are not plain text, however they sniff.
func sniffText(f *os.File) (kind, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return kind{}, fmt.Errorf("rewind upload: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	first := true
	for {
		r, size, err := br.ReadRune()
		if err == io.EOF {
			return kindText, nil
		}
		if err != nil {
			return kind{}, fmt.Errorf("read upload: %w", err)
		}
		switch {
		case r == utf8.RuneError && size == 1:
			return kind{}, refuse("is not valid UTF-8 text")
		case r == 0:
			return kind{}, refuse("is not plain text: it contains NUL characters")
		case first && r == '\uFEFF', first && unicode.IsSpace(r):
			continue
		case first && r == '<':
			return kind{}, refuse("looks like markup (HTML, SVG or XML), which is not allowed: %s", allowedWords)
		}
		first = false
	}
}
