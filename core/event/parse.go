package event

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// parseValue parses one JSON document straight into OPA values. It accepts
// exactly what encoding/json accepts and yields what
// ast.InterfaceToValue(json.Decode(UseNumber)) yields (numbers keep their
// literal text, invalid UTF-8 becomes U+FFFD, a repeated key keeps its last
// value), in a third of the time and allocations: parsing is most of the CPU
// an event costs.
func parseValue(data []byte) (ast.Value, error) { return parseKeeping(data, nil) }

// parseKeeping is parseValue that, when keep is set, parses only the
// top-level members keep names (ParseKeys).
func parseKeeping(data []byte, keep map[string]bool) (ast.Value, error) {
	p := &parser{data: data, keep: keep}
	if keep != nil {
		// Only the members kept are built: a small map for sharing
		// their key terms (member).
		p.keys = make(map[string]*ast.Term, len(keep))
	}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected %q after the top-level value", p.data[p.pos])
	}
	return v, nil
}

// maxDepth bounds nesting so a hostile body cannot exhaust the stack; it is
// encoding/json's limit, so what json.Valid accepts always parses.
const maxDepth = 10000

type parser struct {
	data []byte
	pos  int
	buf  []byte // scratch for unescaping
	// keys shares the term of each distinct object key: reports repeat the
	// same few keys in every element of their lists. Terms are immutable.
	keys map[string]*ast.Term
	// keep, when set, names the top-level members to parse; the others
	// are skipped (ParseKeys).
	keep map[string]bool
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

var errEOF = errors.New("unexpected end of JSON input")

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (ast.Value, error) {
	if p.pos >= len(p.data) {
		return nil, errEOF
	}
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d levels", maxDepth)
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		b, err := p.str()
		if err != nil {
			return nil, err
		}
		return ast.String(b), nil
	case c == 't':
		return p.literal("true", ast.Boolean(true))
	case c == 'f':
		return p.literal("false", ast.Boolean(false))
	case c == 'n':
		return p.literal("null", ast.Null{})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("invalid character %q looking for a value", c)
	}
}

func (p *parser) literal(word string, v ast.Value) (ast.Value, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return nil, p.errorf("invalid literal, expected %s", word)
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) object(depth int) (ast.Value, error) {
	p.pos++ // {
	var terms [][2]*ast.Term
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return ast.NewObject(), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, errEOF
		}
		if p.data[p.pos] != '"' {
			return nil, p.errorf("invalid character %q looking for an object key", p.data[p.pos])
		}
		kb, err := p.str()
		if err != nil {
			return nil, err
		}
		if depth == 0 && p.keep != nil && !p.keep[string(kb)] {
			// A top-level member nobody reads (ParseKeys): skipped.
			if err := p.skipMember(); err != nil {
				return nil, err
			}
		} else {
			kv, err := p.member(kb, depth)
			if err != nil {
				return nil, err
			}
			terms = append(terms, kv)
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, errEOF
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return newObject(terms), nil
		default:
			return nil, p.errorf("invalid character %q after an object value", p.data[p.pos])
		}
	}
}

// colon moves past the ':' after an object key.
func (p *parser) colon() error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return errEOF
	}
	if p.data[p.pos] != ':' {
		return p.errorf("invalid character %q after an object key", p.data[p.pos])
	}
	p.pos++
	p.skipSpace()
	return nil
}

// skipMember moves past the ':' and the value of a member not kept.
func (p *parser) skipMember() error {
	if err := p.colon(); err != nil {
		return err
	}
	return p.skip(1)
}

// member parses the ':' and the value of the member with key kb.
func (p *parser) member(kb []byte, depth int) ([2]*ast.Term, error) {
	key, ok := p.keys[string(kb)]
	if !ok {
		if p.keys == nil {
			p.keys = make(map[string]*ast.Term, 64)
		}
		key = ast.StringTerm(string(kb))
		p.keys[string(kb)] = key
	}
	if err := p.colon(); err != nil {
		return [2]*ast.Term{}, err
	}
	v, err := p.value(depth + 1)
	if err != nil {
		return [2]*ast.Term{}, err
	}
	return [2]*ast.Term{key, ast.NewTerm(v)}, nil
}

// newObject builds an object; a repeated key keeps its last value, as
// encoding/json does.
func newObject(terms [][2]*ast.Term) ast.Object {
	obj := ast.NewObjectWithCapacity(len(terms))
	for _, kv := range terms {
		obj.Insert(kv[0], kv[1])
	}
	return obj
}

func (p *parser) array(depth int) (ast.Value, error) {
	p.pos++ // [
	var elems []*ast.Term
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return ast.NewArray(), nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, ast.NewTerm(v))
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, errEOF
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return ast.NewArray(elems...), nil
		default:
			return nil, p.errorf("invalid character %q after an array element", p.data[p.pos])
		}
	}
}

func (p *parser) number() (ast.Value, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return nil, p.errorf("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return nil, p.errorf("invalid number: digits must follow '.'")
		}
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return nil, p.errorf("invalid number: digits must follow the exponent")
		}
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	}
	return ast.Number(d[start:p.pos]), nil
}

// str parses a string at p.pos (the opening quote). The bytes returned
// are valid UTF-8 and only until the next call.
func (p *parser) str() ([]byte, error) {
	p.pos++ // "
	start := p.pos
	d := p.data
	// Fast path: no escapes, ASCII or valid UTF-8.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := d[start:p.pos]
			p.pos++
			if utf8.Valid(s) {
				return s, nil
			}
			return toValidUTF8(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, p.errorf("invalid control character in a string")
		}
		p.pos++
	}
	// Slow path: unescape into buf.
	p.buf = append(p.buf[:0], d[start:p.pos]...)
	for {
		if p.pos >= len(d) {
			return nil, errEOF
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			if utf8.Valid(p.buf) {
				return p.buf, nil
			}
			return toValidUTF8(p.buf), nil
		case c < 0x20:
			return nil, p.errorf("invalid control character in a string")
		case c != '\\':
			p.buf = append(p.buf, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(d) {
			return nil, errEOF
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			p.buf = append(p.buf, e)
		case 'b':
			p.buf = append(p.buf, '\b')
		case 'f':
			p.buf = append(p.buf, '\f')
		case 'n':
			p.buf = append(p.buf, '\n')
		case 'r':
			p.buf = append(p.buf, '\r')
		case 't':
			p.buf = append(p.buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by \u low surrogate forms one rune.
				save := p.pos
				if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							p.buf = utf8.AppendRune(p.buf, dec)
							continue
						}
					}
				}
				p.pos = save
				r = utf8.RuneError
			}
			p.buf = utf8.AppendRune(p.buf, r)
		default:
			return nil, p.errorf("invalid escape \\%c", e)
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(n), true
}

// toValidUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func toValidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}
