package resolvers

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
)

// sweepBatch is how many uploads one query of the sweep reads.
const sweepBatch = 100

// SweepUploads deletes the uploads nobody sent within UploadMaxAge: each
// row first, unless it was sent meanwhile, then its files, so that a
// message never shows an upload whose files are gone. Instances may sweep
// at once: only the one that deleted a row deletes its files. It returns
// how many uploads it deleted.
func (r *Resolver) SweepUploads(ctx context.Context) (int, error) {
	cutoff := r.cfg.Now().Add(-r.cfg.UploadMaxAge)
	swept := 0
	for {
		as, err := db.SelectUnsentAttachments(ctx, r.db, cutoff, sweepBatch)
		if err != nil {
			return swept, fmt.Errorf("sweep uploads: %w", err)
		}
		for _, a := range as {
			deleted, err := db.DeleteUnsentAttachment(ctx, r.db, a.ID)
			if err != nil {
				return swept, fmt.Errorf("sweep uploads: %w", err)
			}
			if deleted {
				r.deleteFiles(ctx, a)
				swept++
			}
		}
		if len(as) < sweepBatch {
			return swept, nil
		}
	}
}

// RunUploadSweeper sweeps every interval until ctx is done, logging what
// it did; a failed sweep is tried again at the next tick.
func (r *Resolver) RunUploadSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.SweepUploads(ctx)
		log := zerolog.Ctx(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error().Err(err).Int("deleted", n).Msg("sweep of unsent uploads failed")
		case n > 0:
			log.Info().Int("deleted", n).Msg("deleted uploads never sent")
		}
	}
}
