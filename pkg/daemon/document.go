package daemon

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// docEncoder encodes the persisted document (documentOut) without re-encoding what did not
// change: each service's state is encoded on its own and kept with a deep copy of the state
// it encodes; an iteration compares every state with its copy (sameState: no encoding, no
// allocation) and re-encodes only those that differ. The document is reassembled only when a
// part, the set of services or the journal changed, and is then byte for byte what
// json.Marshal(documentOut) writes (TestDocEncoderMatchesMarshal). Encoding all 5,000 states
// of a 10,000-endpoint configuration every iteration, to find the document unchanged, was ~7 %
// of an iteration's CPU (docs/benchmarks.md, third round).
//
// Crash consistency rests on "changed" never being missed: the copy is a deep copy made by
// reflection (every pointer, slice and map of the state, whatever fields it gains), so a state
// modified in place after it was encoded still differs from its copy. A false "changed" (equal
// JSON, unequal values: a time's monotonic reading) costs one encoding, and the assembled
// document is still compared with the last write before writing.
type docEncoder struct {
	parts   map[string]*docPart
	names   []string // sorted names of parts, as assembled into raw
	journal []byte   // the journal encoding raw holds
	raw     []byte   // the last assembled document (nil: none); never modified once returned
	// cur holds the state being compared: sameState takes pointers for reflection, and a
	// pointer to the range variable made every state escape, a ~350-byte copy per service per
	// iteration (1.7 MB per loop at 10,000 endpoints). Cleared after each encode.
	cur failover.State
}

// docPart is one service's entry, `"name":{state}`: in raw at [off, off+n) once assembled,
// in enc while it waits for the next assembly (not kept twice: the document is the copy).
type docPart struct {
	st     failover.State // deep copy of the state encoded
	enc    []byte
	off, n int
}

// encode returns the document of states and the journal's encoding jr. The slice returned is
// the previous one when nothing changed; it is never modified afterwards.
func (e *docEncoder) encode(states map[string]failover.State, jr []byte) ([]byte, error) {
	if e.parts == nil {
		e.parts = make(map[string]*docPart, len(states))
	}
	dirty := e.raw == nil || len(states) != len(e.parts) || !sameBytes(jr, e.journal)
	defer func() { e.cur = failover.State{} }() // keep no reference to a state between calls
	for name, st := range states {
		p := e.parts[name]
		if p != nil {
			e.cur = st
			if sameState(&e.cur, &p.st) {
				continue
			}
		}
		enc, err := encodePart(name, st)
		if err != nil {
			// Forget the part: the set differs from the states until it encodes, so whatever
			// else changed in this call is assembled by the next one that succeeds.
			delete(e.parts, name)
			return nil, err
		}
		if p == nil {
			p = &docPart{}
			e.parts[name] = p
		}
		p.st, p.enc, p.n = deepCopy(st), enc, len(enc)
		dirty = true
	}
	if !dirty {
		return e.raw, nil
	}
	for name := range e.parts {
		if _, ok := states[name]; !ok {
			delete(e.parts, name)
		}
	}
	e.names = e.names[:0]
	size := len(`{"version":1,"services":{},"journal":}`) + len(jr)
	for name, p := range e.parts {
		e.names = append(e.names, name)
		size += p.n + 1
	}
	slices.Sort(e.names)
	raw := make([]byte, 0, size) // a new buffer: the last one may be held as the last write
	raw = append(raw, `{"version":1,"services":{`...)
	for i, name := range e.names {
		if i > 0 {
			raw = append(raw, ',')
		}
		p := e.parts[name]
		enc := p.enc
		if enc == nil {
			enc = e.raw[p.off : p.off+p.n]
		}
		p.off, p.enc = len(raw), nil
		raw = append(raw, enc...)
	}
	raw = append(raw, '}')
	if len(jr) > 0 {
		raw = append(raw, `,"journal":`...)
		raw = append(raw, jr...)
	}
	raw = append(raw, '}')
	e.raw, e.journal = raw, jr
	return raw, nil
}

// encodePart is one entry of the services object, as json.Marshal writes a map entry.
func encodePart(name string, st failover.State) ([]byte, error) {
	key, err := json.Marshal(name)
	if err != nil {
		return nil, fmt.Errorf("encode state of service %s: %w", name, err)
	}
	val, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode state of service %s: %w", name, err)
	}
	enc := make([]byte, 0, len(key)+1+len(val))
	enc = append(append(append(enc, key...), ':'), val...)
	return enc, nil
}

// sameBytes reports whether a and b are the same slice (not merely equal bytes): the journal's
// encoding is reused while it is unchanged (journalJSON).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// deepCopy copies v with every pointer, slice and map it reaches through exported fields
// copied too, so that nothing the copy holds is shared with v. Unexported fields are copied as
// values (time.Time's location pointer: immutable).
func deepCopy[T any](v T) T {
	var out T
	copyValue(reflect.ValueOf(&out).Elem(), reflect.ValueOf(v))
	return out
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyValue(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			copyValue(k, it.Key())
			v := reflect.New(src.Type().Elem()).Elem()
			copyValue(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Struct:
		dst.Set(src) // unexported fields as values
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				copyValue(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Array:
		for i := range src.Len() {
			copyValue(dst.Index(i), src.Index(i))
		}
	case reflect.Interface:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		c := reflect.New(src.Elem().Type()).Elem()
		copyValue(c, src.Elem())
		dst.Set(c)
	default:
		dst.Set(src)
	}
}

// sameState reports whether a and b hold equal values, field by field through every pointer,
// slice and map (as reflect.DeepEqual, without its visited-pointer map: a state is a tree, and
// DeepEqual's map cost ~750 bytes per service per loop). It may say "different" for equal
// values (two locations of equal times, NaN), never "same" for different ones.
func sameState(a, b *failover.State) bool {
	return sameValue(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	floatMapType = reflect.TypeFor[map[string]float64]()
)

func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return a.Pointer() == b.Pointer() || sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Array:
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		if a.Type() == floatMapType && a.CanInterface() && b.CanInterface() {
			return maps.Equal(a.Interface().(map[string]float64), b.Interface().(map[string]float64))
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !sameValue(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == timeType {
			// wall, ext, loc: the instant, its monotonic reading and its location pointer.
			return a.Field(0).Uint() == b.Field(0).Uint() && a.Field(1).Int() == b.Field(1).Int() &&
				a.Field(2).Pointer() == b.Field(2).Pointer()
		}
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return a.Elem().Type() == b.Elem().Type() && sameValue(a.Elem(), b.Elem())
	}
	return false // func, chan, unsafe pointer: never in a state; re-encode
}
