package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
)

// CheckJSONLine returns an error unless line is one JSON object whose
// objects, at every level, have no key twice (encoding/json accepts
// duplicate keys; log pipelines do not agree on which one wins).
func CheckJSONLine(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("not a JSON object: starts with %v", tok)
	}
	if err := checkObject(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// checkObject walks an object whose '{' was read, up to its '}'.
func checkObject(dec *json.Decoder, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("not JSON: key %v", tok)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", path+key)
		}
		seen[key] = true
		if err := checkValue(dec, path+key+"."); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return checkObject(dec, path)
	case '[':
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, fmt.Sprintf("%s%d.", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return fmt.Errorf("not JSON: unexpected %v", d)
}

// LineChecker is an io.Writer for a slog JSON handler (one record per
// Write, or lines split across writes) that checks every line with
// CheckJSONLine and keeps the problems; Next, when set, gets every write
// too. Safe for concurrent use.
type LineChecker struct {
	Next io.Writer

	mu       sync.Mutex
	partial  []byte
	lines    int
	problems []string
	levels   map[string]int
}

func (c *LineChecker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.check(c.partial[:i])
		c.partial = c.partial[i+1:]
	}
	if c.Next != nil {
		return c.Next.Write(p)
	}
	return len(p), nil
}

func (c *LineChecker) check(line []byte) {
	c.lines++
	if err := CheckJSONLine(line); err != nil {
		c.problems = append(c.problems, fmt.Sprintf("%v: %s", err, line))
		return
	}
	var rec struct {
		Level string `json:"level"`
	}
	if json.Unmarshal(line, &rec) == nil {
		if c.levels == nil {
			c.levels = map[string]int{}
		}
		c.levels[rec.Level]++
	}
}

// Lines returns how many lines were checked, and the problems found (an
// unterminated last line is one).
func (c *LineChecker) Lines() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	problems := append([]string(nil), c.problems...)
	if len(c.partial) > 0 {
		problems = append(problems, fmt.Sprintf("unterminated line: %s", c.partial))
	}
	return c.lines, problems
}

// Levels returns how many lines had each level ("INFO", "WARN", ...).
func (c *LineChecker) Levels() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.levels)
}
