package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration, located in the file.
type Problem struct {
	// File is the configuration file's name as given.
	File string
	// Line and Col locate the key (1-based); zero when unknown.
	Line, Col int
	// Path is the key path, e.g. "apis[0].upstream.tls.trust".
	Path string
	// Message says what is wrong and how to fix it or what is valid.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	if p.Path != "" {
		b.WriteString(" " + p.Path)
	}
	b.WriteString(": " + p.Message)
	return b.String()
}

// Problems is every problem found, in file order.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

type pos struct{ line, col int }

// Document is a parsed configuration file with the position of every key.
type Document struct {
	// Name is the file name used in problems.
	Name string
	// File is the decoded configuration, before defaults.
	File File
	pos  map[string]pos // where each key (or sequence item) starts
	val  map[string]pos // where each key's value starts
}

// Load reads and strictly decodes the file at path. Problems lists syntax
// errors, unknown keys and badly typed values. The Document is nil only when
// the file cannot be read or is not YAML; otherwise it holds what could be
// decoded, so that validation can report further problems in the same run.
func Load(path string) (*Document, Problems) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Message: fmt.Sprintf("cannot read configuration: %v", err)}}
	}
	return Parse(path, data)
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?:column (\d+): )?(.*)$`)

// Parse decodes configuration data; name is used in problems.
func Parse(name string, data []byte) (*Document, Problems) {
	d := &Document{Name: name, pos: map[string]pos{}, val: map[string]pos{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{d.fromDecodeError(err.Error())}
	}
	if len(root.Content) == 0 {
		return nil, Problems{{File: name, Message: "configuration is empty: at least one listener and one API are needed (see README, Configuration)"}}
	}
	var probs Problems
	d.walk(root.Content[0], reflect.TypeOf(File{}), "", &probs)
	if err := root.Content[0].Decode(&d.File); err != nil {
		if te, ok := err.(*yaml.TypeError); ok {
			for _, e := range te.Errors {
				probs = append(probs, d.fromDecodeError(e))
			}
		} else {
			probs = append(probs, d.fromDecodeError(err.Error()))
		}
	}
	sortProblems(probs)
	return d, probs
}

// Check loads the file at path, applies defaults and validates it. It returns
// the document (for locating later problems; nil if the file could not be
// read or parsed), the effective configuration, and every problem found,
// located and in file order. The configuration is usable only when no problem
// is returned.
func Check(path string) (*Document, File, Problems) {
	d, probs := Load(path)
	if d == nil {
		return nil, File{}, probs
	}
	f := WithDefaults(d.File)
	return d, f, d.Locate(append(probs, Validate(f)...))
}

// fromDecodeError turns a yaml.v3 message "line N: ..." into a Problem,
// finding the key path that sits on that line.
func (d *Document) fromDecodeError(msg string) Problem {
	p := Problem{File: d.Name, Message: msg}
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Col, _ = strconv.Atoi(m[2])
		p.Message = m[3]
		p.Path = d.pathAt(p.Line, p.Col)
		if pp, ok := d.pos[p.Path]; ok {
			p.Line, p.Col = pp.line, pp.col
		}
	}
	if strings.HasSuffix(p.Message, "into time.Duration") {
		p.Message += " (write a duration such as 250ms, 5s, 2m or 1h)"
	}
	p.Message = strings.Replace(p.Message, "cannot unmarshal !!", "wrong type: cannot use YAML !!", 1)
	return p
}

// pathAt finds the key path of the value at line and col (0: anywhere on
// the line). Without a column it takes the deepest path on the line, and
// the lexically first of equals, so the answer never depends on map order.
func (d *Document) pathAt(line, col int) string {
	best := ""
	for path, p := range d.pos {
		v := d.val[path]
		onLine := p.line == line || v.line == line
		atCol := col == 0 || (p.line == line && p.col == col) || (v.line == line && v.col == col)
		if !onLine || !atCol {
			continue
		}
		if len(path) > len(best) || (len(path) == len(best) && path < best) {
			best = path
		}
	}
	return best
}

// Locate fills in the line and column of problems from their paths, using the
// nearest enclosing key that the file spells out.
func (d *Document) Locate(ps Problems) Problems {
	for i := range ps {
		ps[i].File = d.Name
		path := ps[i].Path
		for path != "" {
			if p, ok := d.pos[path]; ok {
				ps[i].Line, ps[i].Col = p.line, p.col
				break
			}
			path = parentPath(path)
		}
	}
	sortProblems(ps)
	return ps
}

func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// walk records the position of every key and reports keys the model does not
// have. The decoder would only say "field x not found in type config.TLS";
// this says where, under which path, and what the valid keys are.
func (d *Document) walk(n *yaml.Node, t reflect.Type, path string, probs *Problems) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) && t.Kind() != reflect.Struct {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := join(path, k.Value)
			d.pos[child] = pos{k.Line, k.Column}
			d.val[child] = pos{v.Line, v.Column}
			ft, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, Problem{File: d.Name, Line: k.Line, Col: k.Column, Path: child,
					Message: unknownKey(k.Value, fields)})
				continue
			}
			d.walk(v, ft, child, probs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := join(path, k.Value)
			d.pos[child] = pos{k.Line, k.Column}
			d.val[child] = pos{v.Line, v.Column}
			d.walk(v, t.Elem(), child, probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			d.pos[child] = pos{v.Line, v.Column}
			d.walk(v, t.Elem(), child, probs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			collectFields(f.Type, into)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

func unknownKey(key string, fields map[string]reflect.Type) string {
	valid := make([]string, 0, len(fields))
	for k := range fields {
		valid = append(valid, k)
	}
	sort.Strings(valid)
	msg := fmt.Sprintf("unknown key %q", key)
	if s := closest(key, valid); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (valid here: " + strings.Join(valid, ", ") + ")"
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if dist := editDistance(s, c); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseAPI decodes one API definition given as YAML or JSON (a JSON object is
// valid YAML), with the same strictness as the file: unknown keys are
// problems. name is used in problems; the API's name is set by the caller.
func ParseAPI(name string, data []byte) (API, Problems) {
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil || len(node.Content) == 0 {
		msg := "empty API definition"
		if err != nil {
			msg = err.Error()
		}
		return API{}, Problems{{File: name, Message: msg}}
	}
	d := &Document{Name: name, pos: map[string]pos{}, val: map[string]pos{}}
	var probs Problems
	var a API
	d.walk(node.Content[0], reflect.TypeOf(API{}), "", &probs)
	if err := node.Content[0].Decode(&a); err != nil {
		probs = append(probs, d.fromDecodeError(err.Error()))
	}
	return a, probs
}
