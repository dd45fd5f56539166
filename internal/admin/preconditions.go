package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
)

// conditions are a request's If-Match and If-None-Match headers (RFC 9110
// §13.1.1 and §13.1.2), parsed.
type conditions struct {
	// match lists If-Match's entity tags as sent (quotes and any W/
	// included); matchAny is If-Match: *.
	match    []string
	matchAny bool
	// noneMatch and noneMatchAny are the same for If-None-Match.
	noneMatch    []string
	noneMatchAny bool
}

// hasMatch reports whether If-Match was sent.
func (c conditions) hasMatch() bool { return c.matchAny || len(c.match) > 0 }

// hasNoneMatch reports whether If-None-Match was sent.
func (c conditions) hasNoneMatch() bool { return c.noneMatchAny || len(c.noneMatch) > 0 }

// parseConditions reads both headers, refusing malformed entity tags.
func parseConditions(h http.Header) (conditions, *problem.Error) {
	var c conditions
	var err error
	if c.matchAny, c.match, err = parseTags(h.Values("If-Match")); err != nil {
		return c, problem.Wrap(problem.CodeAdminInvalid, "If-Match: "+err.Error()+".", err)
	}
	if c.noneMatchAny, c.noneMatch, err = parseTags(h.Values("If-None-Match")); err != nil {
		return c, problem.Wrap(problem.CodeAdminInvalid, "If-None-Match: "+err.Error()+".", err)
	}
	return c, nil
}

// parseTags splits the values of one header into entity tags, or reports
// "*".
func parseTags(values []string) (star bool, tags []string, err error) {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			t := strings.TrimSpace(part)
			switch {
			case t == "":
			case t == "*":
				star = true
			case isEntityTag(strings.TrimPrefix(t, "W/")):
				tags = append(tags, t)
			default:
				return false, nil, fmt.Errorf("%q is not an entity tag: send the ETag exactly as it was received, quotes included, e.g. \"42\"", t)
			}
		}
	}
	if star && len(tags) > 0 {
		return false, nil, errors.New("\"*\" cannot be combined with entity tags")
	}
	return star, tags, nil
}

// isEntityTag reports whether t is an opaque-tag: a quoted string without
// inner quotes (RFC 9110 §8.8.3).
func isEntityTag(t string) bool {
	return len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && !strings.Contains(t[1:len(t)-1], `"`)
}

// strongVersion returns the version a strong entity tag names, or false for
// a weak tag or one that names no version this API ever issued.
func strongVersion(tag string) (int64, bool) {
	if strings.HasPrefix(tag, "W/") {
		return 0, false
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// matchedVersion turns If-Match into the version the store must find. One
// strong tag is passed on as it is, so the store compares it in the same
// transaction as the write; "*" or a list needs the stored version first.
// If-Match compares strongly, so weak tags never match (RFC 9110 §13.1.1).
func (s *Server) matchedVersion(ctx context.Context, key registry.Key, c conditions) (int64, *problem.Error) {
	if !c.matchAny && len(c.match) == 1 {
		if v, ok := strongVersion(c.match[0]); ok {
			return v, nil
		}
		return 0, preconditionFailed(key, fmt.Errorf("If-Match %s names no version of %s", c.match[0], key))
	}
	cur, err := s.store.Get(ctx, key.Kind, key.Tenant, key.Name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return 0, preconditionFailed(key, err)
	case err != nil:
		return 0, storeProblem(err)
	case c.matchAny || slices.Contains(c.match, cur.ETag()):
		return cur.Version, nil
	}
	return 0, preconditionFailed(key, fmt.Errorf("%s is at version %d, which If-Match does not list", key, cur.Version))
}

// preconditionFailed is the 412 of an If-Match that does not hold, because
// the resource changed or is gone.
func preconditionFailed(key registry.Key, cause error) *problem.Error {
	detail := key.String() + " is not at the version in If-Match (it changed or was deleted since it was read); read it again and reapply the change."
	if errors.Is(cause, registry.ErrNotFound) {
		detail = key.String() + " does not exist any more (it was deleted since it was read)."
	}
	return problem.Wrap(problem.CodeAdminPreconditionFailed, detail, cause)
}

// noneMatches reports whether If-None-Match holds against etag, comparing
// weakly (RFC 9110 §13.1.2): false means the client's copy is current.
func noneMatches(c conditions, etag string) bool {
	if c.noneMatchAny {
		return false
	}
	for _, t := range c.noneMatch {
		if strings.TrimPrefix(t, "W/") == etag {
			return false
		}
	}
	return true
}
