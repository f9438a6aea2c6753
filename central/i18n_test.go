package central

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/central/web"
)

// The console's dictionaries have the same keys, and every key the pages
// and scripts use is in them: literal t('key') calls, tEnum('prefix', …)
// prefixes, t(`prefix.${…}`) templates and data-i18n* attributes. Any other form of t( call is
// refused, so nothing escapes the check.
func TestI18nDictionariesCoverEveryKey(t *testing.T) {
	dicts := map[string]map[string]bool{}
	keyLine := regexp.MustCompile(`(?m)^\s*'([^']+)'\s*:\s*'`)
	for _, name := range []string{"i18n/en.js", "i18n/zh-CN.js"} {
		src, err := fs.ReadFile(web.Files, name)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, m := range keyLine.FindAllStringSubmatch(string(src), -1) {
			if keys[m[1]] {
				t.Errorf("%s: key %q twice", name, m[1])
			}
			keys[m[1]] = true
		}
		if len(keys) < 50 {
			t.Fatalf("%s: only %d keys parsed", name, len(keys))
		}
		dicts[name] = keys
	}
	en, zh := dicts["i18n/en.js"], dicts["i18n/zh-CN.js"]
	for k := range en {
		if !zh[k] {
			t.Errorf("zh-CN.js lacks %q (en.js has it)", k)
		}
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("en.js lacks %q (zh-CN.js has it)", k)
		}
	}

	var (
		literal = regexp.MustCompile(`\bt\(\s*'([^']+)'\s*[,)]`)
		enum    = regexp.MustCompile(`\btEnum\(\s*'([^']+)'\s*,`)
		tmpl    = regexp.MustCompile("\\bt\\(\\s*`([a-z0-9_.]+)\\.\\$\\{[^`]*`\\s*[,)]") // t(`live.state.${s}`)
		anyT    = regexp.MustCompile(`\bt\(`)
		anyEnum = regexp.MustCompile(`\btEnum\(`)
		attr    = regexp.MustCompile(`data-i18n(?:-title|-placeholder|-aria)?="([^"]+)"`)
	)
	used := map[string]string{} // key → file
	prefixes := map[string]string{}
	checked := 0
	err := fs.WalkDir(web.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, "i18n") || strings.HasPrefix(path, "vendor/") { // the dictionaries and t() itself; third-party code
			return err
		}
		if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".html") {
			return nil
		}
		b, err := fs.ReadFile(web.Files, path)
		if err != nil {
			return err
		}
		src := string(b)
		checked++
		for _, m := range attr.FindAllStringSubmatch(src, -1) {
			used[m[1]] = path
		}
		if !strings.HasSuffix(path, ".js") {
			return nil
		}
		for _, m := range literal.FindAllStringSubmatch(src, -1) {
			used[m[1]] = path
		}
		for _, m := range enum.FindAllStringSubmatch(src, -1) {
			prefixes[m[1]] = path
		}
		for _, m := range tmpl.FindAllStringSubmatch(src, -1) {
			prefixes[m[1]] = path
		}
		// Definitions (function t(, function tEnum() are not calls.
		calls := len(anyT.FindAllString(src, -1)) - strings.Count(src, "function t(")
		if n := len(literal.FindAllString(src, -1)) + len(tmpl.FindAllString(src, -1)); calls != n {
			t.Errorf("%s: %d t( calls, %d with a literal key: write t('key', …) so the key can be checked", path, calls, n)
		}
		calls = len(anyEnum.FindAllString(src, -1)) - strings.Count(src, "function tEnum(")
		if n := len(enum.FindAllString(src, -1)); calls != n {
			t.Errorf("%s: %d tEnum( calls, %d with a literal prefix", path, calls, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 3 {
		t.Fatalf("checked only %d files", checked)
	}
	var missing []string
	for k, f := range used {
		if !en[k] {
			missing = append(missing, f+": "+k)
		}
	}
	for p, f := range prefixes {
		if !slices.ContainsFunc(keysOf(en), func(k string) bool { return strings.HasPrefix(k, p+".") }) {
			missing = append(missing, f+": "+p+".*")
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("key used but not in the dictionaries: %s", m)
	}
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
