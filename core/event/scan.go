package event

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// skip moves past the value at p.pos without building it.
func (p *parser) skip(depth int) error {
	if p.pos >= len(p.data) {
		return errEOF
	}
	if depth > maxDepth {
		return p.errorf("nested deeper than %d levels", maxDepth)
	}
	switch c := p.data[p.pos]; {
	case c == '{', c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		p.pos++
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == closing {
			p.pos++
			return nil
		}
		for {
			p.skipSpace()
			if c == '{' {
				if p.pos >= len(p.data) || p.data[p.pos] != '"' {
					return p.errorf("expected an object key")
				}
				if err := p.skipString(); err != nil {
					return err
				}
				p.skipSpace()
				if p.pos >= len(p.data) || p.data[p.pos] != ':' {
					return p.errorf("expected ':' after an object key")
				}
				p.pos++
				p.skipSpace()
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.skipSpace()
			if p.pos >= len(p.data) {
				return errEOF
			}
			switch p.data[p.pos] {
			case ',':
				p.pos++
			case closing:
				p.pos++
				return nil
			default:
				return p.errorf("invalid character %q in %s", p.data[p.pos], describe(c))
			}
		}
	case c == '"':
		return p.skipString()
	case c == 't':
		_, err := p.literal("true", nil)
		return err
	case c == 'f':
		_, err := p.literal("false", nil)
		return err
	case c == 'n':
		_, err := p.literal("null", nil)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := p.number()
		return err
	default:
		return p.errorf("invalid character %q looking for a value", c)
	}
}

// skipString moves past the string at p.pos without unescaping it.
func (p *parser) skipString() error {
	d := p.data
	for i := p.pos + 1; i < len(d); i++ {
		switch d[i] {
		case '"':
			p.pos = i + 1
			return nil
		case '\\':
			i++ // the escaped character
		}
	}
	p.pos = len(d)
	return errEOF
}

// ParseKeys parses raw (a JSON object, as Parse) into an OPA object that
// holds only the top-level members named in keys, skipping the others
// without building them: a route that reads input.kind needs nothing
// else of a 5 KB report. nil keys parse everything.
func ParseKeys(raw []byte, keys map[string]bool) (ast.Object, error) {
	v, err := parseObject(raw, keys)
	if err != nil {
		return nil, err
	}
	return v.(ast.Object), nil
}

// ParseKeys is Parse for the top-level members named in keys (see
// ParseKeys); it is not kept, unlike Parse's value.
func (e *Event) ParseKeys(keys map[string]bool) (ast.Value, error) {
	if keys == nil || e.Value != nil {
		return e.Parse()
	}
	if e.keys != nil {
		return parseAt(e.Raw, e.keys, keys)
	}
	return ParseKeys(e.Raw, keys)
}

// parseAt parses the members of the (valid) object raw whose keys start at
// offsets and are named in keep, as ParseKeys does without reading past
// the others.
func parseAt(raw []byte, offsets []int32, keep map[string]bool) (ast.Value, error) {
	// The few keys read: a small map for sharing key terms (member).
	p := &parser{data: raw, keys: make(map[string]*ast.Term, len(keep))}
	var terms [][2]*ast.Term
	for _, off := range offsets {
		p.pos = int(off)
		kb, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		if !keep[string(kb)] {
			continue
		}
		kv, err := p.member(kb, 0)
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		terms = append(terms, kv)
	}
	return newObject(terms), nil
}

// StringReader reads JSON strings as Parse does: unescaped, valid UTF-8
// (U+FFFD for invalid bytes and lone surrogates). A writer that re-encodes
// an event without building its value uses it for the event's strings.
type StringReader struct{ p parser }

// Read reads the string whose opening quote is at data[pos]; s is valid
// until the next Read, next is the position after the closing quote.
func (r *StringReader) Read(data []byte, pos int) (s []byte, next int, err error) {
	r.p.data, r.p.pos = data, pos
	s, err = r.p.str()
	return s, r.p.pos, err
}
