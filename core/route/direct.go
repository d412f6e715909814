package route

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// direct decides the commonest route inputs without the Rego evaluator: a
// few tests, ANDed, each comparing a member of the event (input.a.b) with
// a constant: contains, startswith, endswith, ==, !=, <, <=, >, >=, and
// not before a call. They are decided from the compiled module, so Rego
// v0 and v1 spellings, `=` and `==`, and the order of the operands all
// come out the same.
//
// The outcome is the evaluator's, or none: whenever the evaluator would
// record a builtin error (contains on a number) or meet a value a test
// does not expect (a member of something that is not an object), eval
// answers ok=false and Match asks OPA, which decides and reports as it
// always did. A member missing from the event makes its test undefined:
// the route does not match, with no error, as in Rego.
type direct struct {
	steps []step
}

// maxSlots bounds the members a direct program reads: its values live in
// an array on the stack.
const maxSlots = 8

type stepKind uint8

const (
	// bind: slot = input.path (undefined: no match).
	bind stepKind = iota
	// unify: input.path = constant (undefined or different: no match).
	unify
	// call: op(arg0, arg1), each a slot or a constant.
	call
)

type op uint8

const (
	opContains op = iota
	opStartsWith
	opEndsWith
	opEqual
	opNotEqual
	opLess
	opLessEq
	opGreater
	opGreaterEq
)

// ops maps the builtins direct runs to their op.
var ops = map[string]op{
	ast.Contains.Name:      opContains,
	ast.StartsWith.Name:    opStartsWith,
	ast.EndsWith.Name:      opEndsWith,
	ast.Equal.Name:         opEqual,
	ast.NotEqual.Name:      opNotEqual,
	ast.LessThan.Name:      opLess,
	ast.LessThanEq.Name:    opLessEq,
	ast.GreaterThan.Name:   opGreater,
	ast.GreaterThanEq.Name: opGreaterEq,
}

type step struct {
	kind stepKind
	path []*ast.Term // bind, unify: the members after input
	slot int         // bind
	// konst is unify's constant.
	konst ast.Value
	op    op
	args  [2]operand // call
	not   bool       // call: negated
}

// operand is a bound slot, or a constant when konst is not nil.
type operand struct {
	slot  int
	konst ast.Value
}

// compileDirect returns the direct program of the body of the generated
// module's allow rule (not the default one), or nil when any expression in
// it is not one direct runs.
func compileDirect(rules []*ast.Rule) *direct {
	var body ast.Body
	for _, r := range rules {
		switch {
		case r.Default:
			if !ast.Boolean(false).Equal(r.Head.Value.Value) {
				return nil
			}
		case body != nil || r.Else != nil || r.Head.Value == nil || !ast.Boolean(true).Equal(r.Head.Value.Value):
			return nil
		default:
			body = r.Body
		}
	}
	if len(body) == 0 {
		return nil
	}
	d := &direct{}
	slots := map[ast.Var]int{}
	for _, e := range body {
		if len(e.With) > 0 {
			return nil
		}
		terms, ok := e.Terms.([]*ast.Term)
		if !ok || len(terms) != 3 {
			return nil
		}
		name := e.Operator().String()
		if name == ast.Equality.Name && !e.Negated {
			s, ok := unifyStep(terms[1], terms[2], slots)
			if !ok {
				return nil
			}
			if s.kind == bind && len(slots) > maxSlots {
				return nil
			}
			d.steps = append(d.steps, s)
			continue
		}
		o, ok := ops[name]
		if !ok {
			return nil
		}
		s := step{kind: call, op: o, not: e.Negated}
		for i, t := range terms[1:] {
			switch v := t.Value.(type) {
			case ast.Var:
				slot, ok := slots[v]
				if !ok {
					return nil
				}
				s.args[i] = operand{slot: slot}
			default:
				if !scalar(v) {
					return nil
				}
				s.args[i] = operand{konst: v}
			}
		}
		d.steps = append(d.steps, s)
	}
	return d
}

// unifyStep is a = b as a bind (a generated local = input.path) or a unify
// (input.path = a scalar constant, either way round).
func unifyStep(a, b *ast.Term, slots map[ast.Var]int) (step, bool) {
	if v, ok := a.Value.(ast.Var); ok && v.IsGenerated() {
		path, ok := inputPath(b.Value)
		if _, bound := slots[v]; !ok || bound {
			return step{}, false
		}
		slots[v] = len(slots)
		return step{kind: bind, path: path, slot: slots[v]}, true
	}
	ref, konst := a.Value, b.Value
	if _, ok := ref.(ast.Ref); !ok {
		ref, konst = konst, ref
	}
	path, ok := inputPath(ref)
	if !ok || !scalar(konst) {
		return step{}, false
	}
	return step{kind: unify, path: path, konst: konst}, true
}

// inputPath is the members of input.a.b (["a", "b"]); false for anything
// else (input itself, an index that is not a string, another document).
func inputPath(v ast.Value) ([]*ast.Term, bool) {
	ref, ok := v.(ast.Ref)
	if !ok || len(ref) < 2 || !ref.HasPrefix(ast.InputRootRef) {
		return nil, false
	}
	for _, t := range ref[1:] {
		if _, ok := t.Value.(ast.String); !ok {
			return nil, false
		}
	}
	return ref[1:], true
}

func scalar(v ast.Value) bool {
	switch v.(type) {
	case ast.String, ast.Number, ast.Boolean, ast.Null:
		return true
	}
	return false
}

// eval decides the route for input: matched, or ok=false when OPA must
// decide.
func (d *direct) eval(input ast.Value) (matched, ok bool) {
	var slots [maxSlots]ast.Value
	for i := range d.steps {
		s := &d.steps[i]
		switch s.kind {
		case bind, unify:
			v, defined, ok := member(input, s.path)
			if !ok {
				return false, false
			}
			if !defined {
				return false, true
			}
			if s.kind == bind {
				slots[s.slot] = v
			} else if !ast.ValueEqual(v, s.konst) {
				return false, true
			}
		case call:
			a, b := s.args[0].value(&slots), s.args[1].value(&slots)
			r, ok := s.op.apply(a, b)
			if !ok {
				return false, false
			}
			if r == s.not {
				return false, true
			}
		}
	}
	return true, true
}

func (o operand) value(slots *[maxSlots]ast.Value) ast.Value {
	if o.konst != nil {
		return o.konst
	}
	return slots[o.slot]
}

// member is input.path: defined=false when an object on the way lacks the
// member; ok=false when something on the way is not an object.
func member(v ast.Value, path []*ast.Term) (ast.Value, bool, bool) {
	for _, k := range path {
		obj, isObj := v.(ast.Object)
		if !isObj {
			return nil, false, false
		}
		t := obj.Get(k)
		if t == nil {
			return nil, false, true
		}
		v = t.Value
	}
	return v, true, true
}

// apply is the builtin's result as OPA computes it; ok=false where OPA
// would record an error instead (a string builtin given something else).
func (o op) apply(a, b ast.Value) (result, ok bool) {
	switch o {
	case opContains, opStartsWith, opEndsWith:
		s, ok1 := a.(ast.String)
		t, ok2 := b.(ast.String)
		if !ok1 || !ok2 {
			return false, false
		}
		switch o {
		case opContains:
			return strings.Contains(string(s), string(t)), true
		case opStartsWith:
			return strings.HasPrefix(string(s), string(t)), true
		default:
			return strings.HasSuffix(string(s), string(t)), true
		}
	case opEqual:
		return ast.ValueEqual(a, b), true
	case opNotEqual:
		return !ast.ValueEqual(a, b), true
	case opLess:
		return a.Compare(b) < 0, true
	case opLessEq:
		return a.Compare(b) <= 0, true
	case opGreater:
		return a.Compare(b) > 0, true
	case opGreaterEq:
		return a.Compare(b) >= 0, true
	}
	return false, false
}
