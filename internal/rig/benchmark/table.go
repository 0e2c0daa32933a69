package benchmark

import (
	"fmt"
	"io"
	"strings"
)

// Table is one Markdown table with a heading and notes under it.
type Table struct {
	Title  string
	Notes  []string
	Header []string
	Rows   [][]string
}

// AddRow appends a row; cells are kept as given.
func (t *Table) AddRow(cells ...string) { t.Rows = append(t.Rows, cells) }

// WriteMarkdown writes the table as a "##" section: the title, the notes as
// paragraphs, then the table. A '|' inside a cell is escaped.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", t.Title)
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "%s\n\n", n)
	}
	writeRow(&b, t.Header)
	sep := make([]string, len(t.Header))
	for i := range sep {
		sep[i] = "---"
	}
	writeRow(&b, sep)
	for _, r := range t.Rows {
		writeRow(&b, r)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table %q: %w", t.Title, err)
	}
	return nil
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		fmt.Fprintf(b, " %s |", strings.ReplaceAll(c, "|", `\|`))
	}
	b.WriteString("\n")
}
