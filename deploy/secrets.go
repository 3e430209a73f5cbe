package deploy

import (
	"embed"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// shipped is every file in deploy/ that shows configuration values. It is a
// package variable because go:embed only fills those; nothing writes it.
//
//go:embed config.example.yaml docker-compose.yml compose/*.yaml k8s/*.yaml
var shipped embed.FS

// printedOutside lists the secret values printed in files go:embed cannot
// reach (outside deploy/), and values earlier versions of the docs printed,
// which configurations copied back then still hold. TestDocsPrintNoUnlistedSecret
// fails when a doc prints one this list and the embedded files lack.
func printedOutside() map[string]string {
	return map[string]string{
		// deploy/config.example.yaml gave it as the default of
		// OSS2S3_FC_HANGZHOU_SECRET until the default was removed.
		"0123456789abcdef-example": "deploy/config.example.yaml",
		// The name of the Alertmanager's Secret, under a secret: key the
		// scan reads as a value; refusing it costs nothing.
		"oss2s3-alertmanager": "deploy/alertmanager/k8s.yaml",
	}
}

// PrintedSecrets returns every secret, token, password and credential value
// the repository's docs print, each with the file that prints it: values no
// deployment may use, since anyone can read them.
func PrintedSecrets() map[string]string {
	printed := printedOutside()
	err := fs.WalkDir(shipped, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text, err := shipped.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range secretsIn(string(text)) {
			printed[v] = "deploy/" + path
		}
		return nil
	})
	if err != nil {
		// The files are compiled in: reading them cannot fail.
		panic("deploy: reading the embedded files: " + err.Error())
	}
	return printed
}

// secretWords are the words a name that holds a secret contains.
const secretWords = `secret|token|password|passwd|api_?key|basic_user`

var (
	// keyRe finds a name that may hold a secret followed by its separator:
	// a YAML key (access_key_secret:, webhook-secret:), a variable
	// (OSS2S3_WEBHOOK_SECRET=), or a flag (--token T, --from-literal=admin-token=).
	keyRe = regexp.MustCompile(`(?i)((?:--)?[a-z0-9_-]*(?:` + secretWords + `)[a-z0-9_-]*)["']?(\s*[:=]\s*|\s+)`)
	// defaultRe finds an environment variable's default: ${NAME:-default}
	// (oss2s3's configuration, compose) or ${env('NAME', 'default')}
	// (Serverless Devs).
	defaultRe  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}|\$\{env\('([^']*)',\s*'([^']*)'\)\}`)
	secretWord = regexp.MustCompile(secretWords)
)

// secretName says whether a key or variable name holds a secret, not the
// name of one (api_key_header, secretKeyRef, creds_file).
func secretName(name string) bool {
	n := strings.ToLower(strings.TrimLeft(name, "-"))
	if !secretWord.MatchString(n) {
		return false
	}
	for _, suffix := range []string{"header", "file", "ref", "url", "id", "name"} {
		if strings.HasSuffix(n, suffix) {
			return false
		}
	}
	return true
}

// secretsIn returns the literal values text gives to names that hold
// secrets: `key: value`, `key: [a, b]`, a block list under `key:`,
// `NAME=value`, `--flag value`, and the defaults of secret variables,
// in YAML, shell and their comments alike. References (${NAME}, $VAR,
// $(command)) and placeholders ("...", <this>) are not values.
func secretsIn(text string) []string {
	var found []string
	add := func(vals ...string) {
		for _, v := range vals {
			if v, ok := literal(v); ok && !slices.Contains(found, v) {
				found = append(found, v)
			}
		}
	}
	for _, m := range defaultRe.FindAllStringSubmatch(text, -1) {
		if secretName(m[1]) {
			add(m[2])
		}
		if secretName(m[3]) {
			add(m[4])
		}
	}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		indent, line := uncomment(line)
		for pos := 0; pos < len(line); {
			m := keyRe.FindStringSubmatchIndex(line[pos:])
			if m == nil {
				break
			}
			start := pos + m[0]
			name, sep := line[pos+m[2]:pos+m[3]], strings.TrimSpace(line[pos+m[4]:pos+m[5]])
			pos += m[1]
			if !secretName(name) || (sep == "" && !strings.HasPrefix(name, "--")) ||
				(sep == ":" && !yamlKeyAt(line[:start])) ||
				strings.HasSuffix(line[:start], "${") { // ${NAME:-default}: defaultRe's
				continue
			}
			vals, n := values(line[pos:], sep == ":")
			pos += n
			add(vals...)
			if sep == ":" && n == 0 {
				add(block(lines[i+1:], indent)...)
			}
		}
	}
	return found
}

// yamlKeyAt says whether a YAML key may start after before: at the start
// of a line, of a list item or inside a flow map, not in prose ("several
// keys or passwords: rotation").
func yamlKeyAt(before string) bool {
	before = strings.TrimRight(before, ` "'`)
	return before == "" || strings.HasSuffix(before, "-") || strings.HasSuffix(before, "{") || strings.HasSuffix(before, ",")
}

// uncomment returns a line's indentation and its text, with a leading
// comment mark taken off: examples are often printed as comments.
func uncomment(line string) (int, string) {
	trimmed := strings.TrimLeft(line, " \t")
	if rest, ok := strings.CutPrefix(trimmed, "#"); ok {
		rest = strings.TrimPrefix(rest, " ")
		trimmed = strings.TrimLeft(rest, " \t")
		return len(rest) - len(trimmed), trimmed
	}
	return len(line) - len(trimmed), trimmed
}

// block returns the values of the YAML block below a key with nothing after
// its colon: list items (- value, or - name: value) and nested entries
// (user: [password]), up to the first line indented no deeper than the key
// (list items may sit at the key's own depth).
func block(lines []string, keyIndent int) []string {
	var vals []string
	for _, line := range lines {
		indent, text := uncomment(line)
		item, isItem := strings.CutPrefix(text, "- ")
		if text == "" || indent < keyIndent || (indent == keyIndent && !isItem) {
			break
		}
		if !isItem {
			item = text
		}
		if strings.HasSuffix(item, ":") {
			continue // a key whose values are the lines below it
		}
		if k, v, ok := strings.Cut(item, ": "); ok && !strings.ContainsAny(k, `"'[{$ `) {
			item = v
		}
		v, _ := values(item, true)
		vals = append(vals, v...)
	}
	return vals
}

// values reads the value at the start of s, and says how many bytes it
// took: a quoted string, a YAML flow list or map (its leaf values), a
// ${...} reference, or a word. In YAML (after a colon) a plain value runs
// to the end of the line, a comment or the end of a flow map's entry, and
// one of several words is prose (an error message's "webhook.secrets: at
// least one secret..."), no secret; in shell a word ends at a space.
func values(s string, yamlStyle bool) ([]string, int) {
	lead := len(s) - len(strings.TrimLeft(s, " \t"))
	s = s[lead:]
	if s == "" || s[0] == '#' {
		return nil, 0
	}
	var end int
	switch s[0] {
	case '"', '\'':
		end = strings.IndexByte(s[1:], s[0]) + 2
		if end == 1 {
			end = len(s)
		}
		return []string{strings.Trim(s[:end], `"'`)}, lead + end
	case '[', '{':
		end = closing(s)
		var v any
		if err := yaml.Unmarshal([]byte(s[:end]), &v); err != nil {
			return nil, lead + end
		}
		return leaves(v), lead + end
	case '$':
		if strings.HasPrefix(s, "${") {
			end = closing(s[1:]) + 1
			return []string{s[:end]}, lead + end
		}
	}
	if yamlStyle {
		end = len(s)
		if c := strings.Index(s, " #"); c >= 0 {
			end = c
		}
		if c := strings.IndexAny(s[:end], ",}]"); c >= 0 {
			end = c // the end of an entry of a flow map
		}
		s = s[:end]
		if v := strings.TrimSpace(s); !strings.ContainsAny(v, " \t") {
			return []string{v}, lead + end
		}
		return nil, lead + end
	}
	end = strings.IndexAny(s, " \t,;)`\"'")
	if end < 0 {
		end = len(s)
	}
	return []string{s[:end]}, lead + end
}

// closing returns the length of the bracketed text s starts with, quotes
// respected; all of s when it is not closed.
func closing(s string) int {
	depth, quote := 0, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// leaves returns the strings in a decoded YAML value: list items and map
// values, not map keys (in basic_users: {name: [password]} the name is no
// secret).
func leaves(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, leaves(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return nil
}

// literal returns the value v stands for when it is one a reader could
// copy: the default of ${NAME:-default}, else v itself; references and
// placeholders are none.
func literal(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if m := defaultRe.FindStringSubmatch(v); m != nil && m[0] == v {
		v = m[2] + m[4]
	}
	switch {
	case v == "", v == `""`, v == "''", v == "~", v == "null", v == "{}", v == "[]",
		strings.HasPrefix(v, "$"), strings.Contains(v, "..."),
		strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"):
		return "", false
	}
	return v, true
}
