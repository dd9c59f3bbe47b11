package files

import (
	"errors"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// HandlerConfig tunes Handler; the zero value streams every file itself.
type HandlerConfig struct {
	// Redirect answers with 302 to a presigned URL of the store instead of
	// streaming the bytes through jobchat, when the store can make one
	// (S3). Only sensible when the object store is on another origin than
	// the app: the file is then served by the store, with the
	// Content-Disposition jobchat asked for but without jobchat's other
	// headers.
	Redirect bool
	// PresignTTL is how long a presigned URL lives; 0 means 5 minutes. It
	// only needs to outlast the redirect being followed.
	PresignTTL time.Duration
}

// Pattern is the route NewHandler's handler expects, for an
// http.ServeMux; it checks the method itself, to answer others with 405
// and the file headers.
const Pattern = PathPrefix

// inlineTypes are the types a browser may show in the page: raster
// images, which cannot run script. Everything else (HTML, SVG, PDF, text)
// is a download.
var inlineTypes = map[string]bool{
	"image/jpeg": true,
	"image/png":  true,
	"image/gif":  true,
	"image/webp": true,
}

// Disposition returns the Content-Disposition a file of contentType is
// served with: inline for raster images, attachment for everything else,
// so that an uploaded HTML or SVG file never runs in the app's origin. An
// attachment is named for the last segment of its key, which the uploads
// make the ASCII form of the file's name with the extension of its real
// type, so that a download is saved as "quote.pdf", not as whatever the
// browser makes of the URL.
func Disposition(contentType, key string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && inlineTypes[mt] {
		return "inline"
	}
	name := path.Base(key)
	if name == "." || name == "/" {
		return "attachment"
	}
	if d := mime.FormatMediaType("attachment", map[string]string{"filename": name}); d != "" {
		return d
	}
	return "attachment"
}

type handler struct {
	store  Store
	signer *Signer
	cfg    HandlerConfig
}

// NewHandler serves GET and HEAD /files/<key>?exp=...&sig=...: a URL that
// signer did not make, or made and expired, gets 403. Range requests work
// (http.ServeContent). Every answer carries X-Content-Type-Options: nosniff
// and a sandboxing Content-Security-Policy; files that are not raster
// images come as attachments.
func NewHandler(store Store, signer *Signer, cfg HandlerConfig) http.Handler {
	if cfg.PresignTTL <= 0 {
		cfg.PresignTTL = 5 * time.Minute
	}
	return &handler{store: store, signer: signer, cfg: cfg}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// Set first, so that errors carry them too.
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || checkKey(key) != nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if err := h.signer.Verify(key, q); err != nil {
		zerolog.Ctx(r.Context()).Debug().Err(err).Str("key", key).Msg("file URL refused")
		http.Error(w, "forbidden: this link is invalid or has expired", http.StatusForbidden)
		return
	}
	obj, err := h.store.Open(r.Context(), key)
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer obj.Close()

	ctype := obj.ContentType()
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	disp := Disposition(ctype, key)
	// A signed URL names one file until its expiry: the browser may keep
	// it that long, and no shared cache may.
	maxAge := int64(expiry(q).Sub(h.signer.now()).Seconds())
	hdr.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(maxAge, 0), 10))

	if h.cfg.Redirect {
		u, err := h.store.Presign(r.Context(), key, h.cfg.PresignTTL, disp)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if u != "" {
			hdr.Set("Cache-Control", "no-store")
			http.Redirect(w, r, u, http.StatusFound)
			return
		}
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Disposition", disp)
	// The server's write timeout is sized for API answers; a 25 MiB file
	// on a slow phone link needs longer, but a reader that stalls must
	// still be let go.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(downloadTime(obj.Size())))
	http.ServeContent(w, r, "", obj.ModTime(), obj)
}

// minDownloadRate is the slowest reader a download waits for.
const minDownloadRate = 16 << 10 // bytes per second

// downloadTime is how long sending size bytes may take: a minute, plus
// the time at minDownloadRate.
func downloadTime(size int64) time.Duration {
	return time.Minute + time.Duration(size/minDownloadRate)*time.Second
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	zerolog.Ctx(r.Context()).Error().Err(err).Msg("serving a file")
	http.Error(w, "internal error", http.StatusInternalServerError)
}
