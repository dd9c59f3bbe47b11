// Package stream is the contract between a transport that can push
// subscription results it did not compute, and the code that computes them
// once for many subscribers.
//
// gqlgen runs each subscription in goroutines of its own and encodes each
// event once per subscriber. A Pusher serves a subscription with neither:
// it encodes each event once per selection set and hands the same bytes to
// every subscriber's Sink. The transport (package wsgql) implements Sink;
// the resolvers implement Pusher. Neither imports the other.
//
// It may import gqlgen's graphql package and the standard library.
package stream

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// Sink is where one subscription's results go.
type Sink interface {
	// Send queues payload, the JSON of one GraphQL response
	// ({"data":…}), without blocking. The sink keeps payload, which must
	// not change afterwards. It reports false when the client's queue is
	// full (WaitRoom, then send again) or the subscription is over.
	Send(payload []byte) bool
	// WaitRoom blocks until Send may succeed. It fails when ctx ends, the
	// subscription is over, or the client took nothing for the transport's
	// write timeout, in which case the transport has cut it off.
	WaitRoom(ctx context.Context) error
	// Complete ends the subscription as finished. The transport tells the
	// client unless the client or the socket ended it first.
	Complete()
}

// Pusher serves subscription operations through Sinks.
type Pusher interface {
	// Push is offered every subscription operation after validation; ctx
	// is the connection's (caller, logger) and ends with it. It returns
	// ok false to decline, and the transport runs the operation through
	// gqlgen's executor as usual: Push must decline, not fail, whenever
	// that path would answer with an error, so clients see one behaviour.
	// Once it accepts, it owns sink until the transport calls stop (the
	// client completed the subscription, or the connection ended) or it
	// calls sink.Complete. stop must be safe to call more than once.
	//
	// There is no context per subscription, by design: a subscription
	// that may live for days should cost a few hundred bytes, and stop
	// tells the pusher all it needs.
	Push(ctx context.Context, rc *graphql.OperationContext, sink Sink) (stop func(), ok bool)
}
