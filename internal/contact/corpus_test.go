package contact

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// The detector's precision and recall over testdata/corpus.tsv, labelled
// messages written for jobchat (see the file's header). A message counts
// as detected when Find returns any span; its label says whether it
// carries a contact detail. The thresholds are what the detector
// achieved when they were set, rounded down: a change that lowers either
// fails here, and one that raises them should raise the thresholds.
const (
	minPrecision = 0.99
	minRecall    = 0.95
)

type labelled struct {
	line  int
	label string
	text  string
	// later: in the part of the corpus written after the detector was
	// first measured, and not tuned against.
	later bool
}

func readCorpus(tb testing.TB) []labelled {
	tb.Helper()
	f, err := os.Open("testdata/corpus.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	later := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "# --- added after the first measurement") {
			later = true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		label, text, ok := strings.Cut(line, "\t")
		switch {
		case !ok:
			tb.Fatalf("corpus.tsv:%d: no tab", n)
		case label != "none" && label != "phone" && label != "email" && label != "link" && label != "handle":
			tb.Fatalf("corpus.tsv:%d: unknown label %q", n, label)
		}
		out = append(out, labelled{line: n, label: label, text: text, later: later})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestCorpusPrecisionRecall(t *testing.T) {
	d, err := New(Config{Region: "US"})
	if err != nil {
		t.Fatal(err)
	}
	corpus := readCorpus(t)
	var tp, fp, fn, tn int
	var later [4]int              // tp, fp, fn, tn of the later part
	byKind := map[string][2]int{} // label: found, total
	for _, m := range corpus {
		spans := d.Find(m.text)
		found := len(spans) > 0
		positive := m.label != "none"
		outcome := 0
		switch {
		case found && positive:
			tp++
		case found && !positive:
			fp++
			outcome = 1
			t.Logf("false positive, corpus.tsv:%d: %q -> %s", m.line, m.text, describe(m.text, spans))
		case !found && positive:
			fn++
			outcome = 2
			t.Logf("missed %s, corpus.tsv:%d: %q", m.label, m.line, m.text)
		default:
			tn++
			outcome = 3
		}
		if m.later {
			later[outcome]++
		}
		if positive {
			k := byKind[m.label]
			if found {
				k[0]++
			}
			k[1]++
			byKind[m.label] = k
		}
	}
	if len(corpus) < 300 {
		t.Errorf("the corpus has %d messages; it must keep at least 300", len(corpus))
	}
	precision := float64(tp) / float64(tp+fp)
	recall := float64(tp) / float64(tp+fn)
	t.Logf("corpus: %d messages, %d with contact details, %d without", len(corpus), tp+fn, fp+tn)
	t.Logf("precision %.3f (%d of %d flagged), recall %.3f (%d of %d found)", precision, tp, tp+fp, recall, tp, tp+fn)
	for _, k := range []string{"phone", "email", "link", "handle"} {
		t.Logf("  %-6s recall %d/%d", k, byKind[k][0], byKind[k][1])
	}
	t.Logf("of which written after the first measurement (%d messages): precision %.3f, recall %.3f",
		later[0]+later[1]+later[2]+later[3],
		float64(later[0])/float64(later[0]+later[1]), float64(later[0])/float64(later[0]+later[2]))
	if precision < minPrecision {
		t.Errorf("precision %.3f < %.2f", precision, minPrecision)
	}
	if recall < minRecall {
		t.Errorf("recall %.3f < %.2f", recall, minRecall)
	}
}

func describe(text string, spans []Span) string {
	var parts []string
	for _, sp := range spans {
		parts = append(parts, sp.Kind.String()+" "+`"`+text[sp.Start:sp.End]+`"`)
	}
	return strings.Join(parts, ", ")
}
