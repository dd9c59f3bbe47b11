package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/broadcast"
)

// replayBatch is how many stored messages a catch-up reads at a time.
const replayBatch = 100

// stream delivers a conversation's messages in seq order with no gap and no
// duplicate. It subscribes to the live feed before it reads the database,
// so nothing committed in between is missed: stored messages after the
// starting point come first, then live ones, skipping those already sent
// and reading any that arrive out of order or were lost from the database.
// Without afterSeq it starts at the newest stored message.
func (r *Resolver) stream(ctx context.Context, conversationID string, afterSeq *int64) (<-chan *db.Message, error) {
	sub, err := r.hub.Subscribe(ctx, conversationID)
	if err != nil {
		return nil, fmt.Errorf("subscribe to conversation: %w", err)
	}
	var last int64
	if afterSeq != nil {
		last = *afterSeq
	} else if last, err = db.SelectLastSeq(ctx, r.db, conversationID); err != nil {
		sub.Close()
		return nil, orNotFound(err, "conversation", conversationID, "subscribe")
	}
	out := make(chan *db.Message)
	s := &streamer{r: r, conversationID: conversationID, last: last, out: out, sub: sub}
	go s.run(ctx)
	return out, nil
}

// streamer is one subscription's state; only its goroutine touches it.
type streamer struct {
	r              *Resolver
	conversationID string
	last           int64
	out            chan<- *db.Message
	sub            *broadcast.Subscription
}

func (s *streamer) run(ctx context.Context) {
	defer close(s.out)
	defer func() { s.sub.Close() }()
	log := zerolog.Ctx(ctx).With().Str("conversation_id", s.conversationID).Logger()

	if err := s.catchUp(ctx, 0); err != nil {
		s.logEnd(ctx, log, err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case payload, ok := <-s.sub.C():
			if !ok {
				if err := s.resubscribe(ctx); err != nil {
					s.logEnd(ctx, log, err)
					return
				}
				continue
			}
			var m db.Message
			if err := json.Unmarshal(payload, &m); err != nil {
				log.Error().Err(err).Msg("undecodable broadcast payload")
				continue
			}
			if m.Seq <= s.last {
				continue
			}
			if m.Seq > s.last+1 {
				if err := s.catchUp(ctx, m.Seq); err != nil {
					s.logEnd(ctx, log, err)
					return
				}
			}
			if err := s.send(ctx, &m); err != nil {
				return
			}
		}
	}
}

// resubscribe replaces a subscription the hub cut off for falling behind,
// then reads what it missed from the database. A closed hub ends the stream.
func (s *streamer) resubscribe(ctx context.Context) error {
	if !errors.Is(s.sub.Err(), broadcast.ErrSlowSubscriber) {
		return s.sub.Err()
	}
	sub, err := s.r.hub.Subscribe(ctx, s.conversationID)
	if err != nil {
		return fmt.Errorf("resubscribe: %w", err)
	}
	s.sub = sub
	return s.catchUp(ctx, 0)
}

// catchUp sends the stored messages after s.last and before beforeSeq
// (zero: all of them).
func (s *streamer) catchUp(ctx context.Context, beforeSeq int64) error {
	for {
		ms, err := db.SelectMessages(ctx, s.r.db, db.MessageFilter{
			ConversationID: s.conversationID,
			AfterSeq:       s.last,
			BeforeSeq:      beforeSeq,
			Limit:          replayBatch,
		})
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		for _, m := range ms {
			if err := s.send(ctx, m); err != nil {
				return err
			}
		}
		if len(ms) < replayBatch {
			return nil
		}
	}
}

func (s *streamer) send(ctx context.Context, m *db.Message) error {
	select {
	case s.out <- m:
		s.last = m.Seq
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *streamer) logEnd(ctx context.Context, log zerolog.Logger, err error) {
	if err == nil || ctx.Err() != nil || errors.Is(err, broadcast.ErrHubClosed) {
		return
	}
	log.Error().Err(err).Msg("subscription ended")
}
