package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/coerce"
	"github.com/jobchat/jobchat/internal/limits"
)

// This file holds persisted operations: Automatic Persisted Queries, the
// "persistedQuery" extension Apollo Client's persisted-query link and
// urql's persistedExchange send, and a list of known operations loaded at
// start, which can be the only operations the server runs.
//
// An APQ client first sends only the SHA-256 of its operation:
//
//	{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<64 hex digits>"}}}
//
// The server runs the operation it knows by that hash, from the list or
// from an earlier registration; otherwise it answers PersistedQueryNotFound,
// and the client sends the hash again with the operation's text, which
// registers it for every client of this instance.

// The extensions.code values of persisted operations.
const (
	codePersistedNotFound = "PERSISTED_QUERY_NOT_FOUND"
	codeNotAllowed        = "OPERATION_NOT_ALLOWED"
)

// errPersistedNotFound is the message Apollo's and urql's links look for.
const errPersistedNotFound = "PersistedQueryNotFound"

// persisted is the extension that resolves hashes to operations and, in
// only mode, refuses operations that are not in the list.
type persisted struct {
	// known are the listed operations by the hex SHA-256 of their text.
	known map[string]string
	// registered holds what APQ clients registered; nil in only mode,
	// where nothing is registered.
	registered graphql.Cache[string]
	// maxBytes bounds what may be registered, so that the cache holds at
	// most its size times this.
	maxBytes int
	only     bool
	// bypass, if set, exempts a caller from only mode.
	bypass func(context.Context) bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*persisted)(nil)

func (*persisted) ExtensionName() string                   { return "PersistedOperations" }
func (*persisted) Validate(graphql.ExecutableSchema) error { return nil }

func (p *persisted) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	raw := params.Extensions["persistedQuery"]
	only := p.only && (p.bypass == nil || !p.bypass(ctx))
	if raw == nil {
		// Absent, or null as some clients send it when they do not
		// persist this operation.
		if only {
			if _, ok := p.known[hashOf(params.Query)]; !ok {
				return notAllowed()
			}
		}
		return nil
	}
	hash, gqlErr := persistedHash(raw)
	if gqlErr != nil {
		return gqlErr
	}
	if params.Query == "" {
		query, ok := p.known[hash]
		if !ok && !only && p.registered != nil {
			query, ok = p.registered.Get(ctx, hash)
		}
		if !ok {
			return &gqlerror.Error{Message: errPersistedNotFound, Extensions: map[string]any{"code": codePersistedNotFound}}
		}
		params.Query = query
		return nil
	}
	if hashOf(params.Query) != hash {
		return badExtension("sha256Hash", "is not the SHA-256 of the query sent with it")
	}
	if _, ok := p.known[hash]; ok {
		return nil
	}
	if only {
		return notAllowed()
	}
	if p.registered != nil && len(params.Query) <= p.maxBytes {
		// Registered before the guard has checked it: a document it
		// refuses is refused again from the cache, at the cost of its
		// parse, and the cache is bounded in entries and bytes.
		p.registered.Add(ctx, hash, params.Query)
	}
	return nil
}

func notAllowed() *gqlerror.Error {
	return &gqlerror.Error{
		Message:    "this server runs only known operations, and this one is not among them",
		Extensions: map[string]any{"code": codeNotAllowed},
	}
}

// persistedHash reads {"version": 1, "sha256Hash": "<hex>"}.
func persistedHash(raw any) (string, *gqlerror.Error) {
	ext, ok := raw.(map[string]any)
	if !ok {
		return "", badExtension("", `must be an object: {"version": 1, "sha256Hash": "<64 hex digits>"}`)
	}
	switch v := ext["version"].(type) {
	case json.Number:
		if v != "1" {
			return "", badExtension("version", "must be 1")
		}
	case float64:
		if v != 1 {
			return "", badExtension("version", "must be 1")
		}
	default:
		return "", badExtension("version", "must be 1")
	}
	hash, _ := ext["sha256Hash"].(string)
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return "", badExtension("sha256Hash", "must be 64 hex digits")
	}
	return lowerHex(hash), nil
}

func badExtension(field, msg string) *gqlerror.Error {
	path := "extensions.persistedQuery"
	if field != "" {
		path += "." + field
	}
	return &gqlerror.Error{
		Message:    path + ": " + msg,
		Extensions: map[string]any{"code": coerce.CodeBadUserInput, "field": path},
	}
}

func hashOf(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}

func lowerHex(s string) string {
	b, _ := hex.DecodeString(s)
	return hex.EncodeToString(b)
}

// LoadPersistedOperations reads a list of known operations from a JSON
// file, in either of the two forms client tooling writes:
//
//   - an object from the SHA-256 of each operation's text to that text, as
//     GraphQL Codegen's client preset writes persisted-documents.json
//     (with persistedDocuments.hashAlgorithm set to "sha256");
//   - an Apollo persisted query manifest, as
//     @apollo/generate-persisted-query-manifest writes it:
//     {"format": "apollo-persisted-query-manifest", "version": 1,
//     "operations": [{"id": "<sha256>", "body": "<text>", ...}]}.
//
// Every hash must be the SHA-256 of its text, which is what clients send,
// and every text must be within the document limits of lim; the error
// names the first that is not.
func LoadPersistedOperations(path string, lim limits.Config) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read persisted operations: %w", err)
	}
	ops, err := parsePersistedOperations(b)
	if err != nil {
		return nil, fmt.Errorf("persisted operations %s: %w", path, err)
	}
	checker := limits.New(lim)
	hashes := make([]string, 0, len(ops))
	for h := range ops {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	known := make(map[string]string, len(ops))
	for _, h := range hashes {
		text := ops[h]
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("persisted operations %s: %q is not a SHA-256 in hex", path, h)
		}
		if hashOf(text) != lowerHex(h) {
			return nil, fmt.Errorf("persisted operations %s: %s is not the SHA-256 of its operation (GraphQL Codegen: set persistedDocuments.hashAlgorithm to \"sha256\")", path, h)
		}
		if _, gqlErr := checker.Parse(text); gqlErr != nil {
			return nil, fmt.Errorf("persisted operations %s: operation %s: %s", path, h, gqlErr.Message)
		}
		known[lowerHex(h)] = text
	}
	return known, nil
}

func parsePersistedOperations(b []byte) (map[string]string, error) {
	var manifest struct {
		Format     string `json:"format"`
		Version    int    `json:"version"`
		Operations []struct {
			ID   string `json:"id"`
			Body string `json:"body"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(b, &manifest); err == nil && manifest.Format != "" {
		if manifest.Format != "apollo-persisted-query-manifest" || manifest.Version != 1 {
			return nil, fmt.Errorf("format %q version %d is not an apollo-persisted-query-manifest of version 1", manifest.Format, manifest.Version)
		}
		ops := make(map[string]string, len(manifest.Operations))
		for i, op := range manifest.Operations {
			if op.ID == "" || op.Body == "" {
				return nil, fmt.Errorf("operations[%d] needs an id and a body", i)
			}
			ops[op.ID] = op.Body
		}
		return ops, nil
	}
	var ops map[string]string
	if err := json.Unmarshal(b, &ops); err != nil {
		return nil, errors.New(`want a JSON object of "<sha256>": "<operation>", or an Apollo persisted query manifest`)
	}
	return ops, nil
}
