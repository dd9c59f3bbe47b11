package config

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Command is one subcommand's view of the settings: which of them it reads,
// the flags of its own, and the help -h prints for it.
type Command struct {
	// Name is the command as typed: "jobchat token".
	Name string
	// Summary says what the command does, under the usage line of -h.
	Summary string
	// Settings names, by flag, the settings the command reads; nil reads
	// them all. The others keep their defaults whatever the environment
	// says, and are not flags of the command.
	Settings []string
	// Own heads the command's own flags in -h ("Token"); Flags, if not nil,
	// adds them to fs.
	Own   string
	Flags func(fs *flag.FlagSet)
}

// Parse reads the command's settings, each flag over its environment
// variable over its default, and validates them. -h, -help and --help
// write the command's help to out and return flag.ErrHelp; a mistake in
// the flags writes the error and the help. Arguments other than flags are
// refused.
func (cmd Command) Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c, rest, err := cmd.parse(args, getenv, out)
	if err != nil {
		return c, err
	}
	if len(rest) > 0 {
		return c, cmd.stray(args, rest)
	}
	return c, nil
}

// fieldValue is a setting as a flag: its text, checked after parsing so
// that an error names the environment variable as well as the flag.
type fieldValue struct {
	f   *Field
	raw string
}

func (v *fieldValue) String() string {
	if v == nil {
		return ""
	}
	return v.raw
}

func (v *fieldValue) Set(s string) error { v.raw = s; return nil }

// IsBoolFlag lets a bool setting be given as -playground, or
// -playground=false.
func (v *fieldValue) IsBoolFlag() bool { return v.f.Type == "bool" }

func (cmd Command) reads(f Field) bool {
	return cmd.Settings == nil || slices.Contains(cmd.Settings, f.Flag)
}

func (cmd Command) parse(args []string, getenv func(string) string, out io.Writer) (Config, []string, error) {
	var c Config
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	fields := Fields()
	values := make([]*fieldValue, len(fields))
	for i := range fields {
		f := &fields[i]
		values[i] = &fieldValue{f: f, raw: f.Default}
		if !cmd.reads(*f) {
			continue
		}
		if v := getenv(f.Env); v != "" {
			values[i].raw = v
		}
		fs.Var(values[i], f.Flag, f.Usage)
	}
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	fs.Usage = func() { cmd.writeHelp(out, fs, fields) }
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	for i, f := range fields {
		if err := f.set(&c, values[i].raw); err != nil {
			return c, nil, fmt.Errorf("%s (--%s): %w", f.Env, f.Flag, err)
		}
	}
	if err := c.validate(); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), nil
}

// stray explains the first argument that is not a flag. The likely cause
// is a bool flag given its value after a space, which ends the flags.
func (cmd Command) stray(args, rest []string) error {
	err := fmt.Errorf("%s: unexpected argument %q", cmd.Name, rest[0])
	i := len(args) - len(rest) - 1
	if i < 0 {
		return err
	}
	prev := strings.TrimLeft(args[i], "-")
	for _, f := range Fields() {
		if f.Flag == prev && f.Type == "bool" && cmd.reads(f) {
			return fmt.Errorf("%w: a bool flag takes its value after \"=\", as in --%s=%s", err, f.Flag, rest[0])
		}
	}
	return err
}

// Help writes the command's help, as -h does.
func (cmd Command) Help(out io.Writer) {
	_, _, _ = cmd.parse([]string{"-h"}, func(string) string { return "" }, out)
}

// helpEntry is one flag in the help: "-name type", then where it comes
// from and its default, then what it does.
type helpEntry struct {
	flag, from, usage string
}

func (cmd Command) writeHelp(out io.Writer, fs *flag.FlagSet, fields []Field) {
	var b strings.Builder
	flags := 0
	fs.VisitAll(func(*flag.Flag) { flags++ })
	if flags > 0 {
		fmt.Fprintf(&b, "Usage: %s [flags]\n", cmd.Name)
	} else {
		fmt.Fprintf(&b, "Usage: %s\n", cmd.Name)
	}
	if cmd.Summary != "" {
		fmt.Fprintf(&b, "\n%s\n", cmd.Summary)
	}

	var sections [][]helpEntry
	var headings []string
	settings := map[string]bool{}
	for _, f := range fields {
		settings[f.Flag] = true
	}
	var own []helpEntry
	fs.VisitAll(func(fl *flag.Flag) {
		if settings[fl.Name] {
			return
		}
		typ, usage := flag.UnquoteUsage(fl)
		if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			typ = "bool"
		}
		e := helpEntry{flag: "-" + fl.Name + " " + typ, usage: usage}
		if fl.DefValue != "" && fl.DefValue != "false" {
			e.from = "default " + fl.DefValue
		}
		own = append(own, e)
	})
	if len(own) > 0 {
		headings, sections = append(headings, cmd.Own), append(sections, own)
	}
	anySetting := false
	for _, g := range Groups() {
		var entries []helpEntry
		for _, f := range fields {
			if f.Group != g || !cmd.reads(f) {
				continue
			}
			from := f.Env
			switch {
			case f.Default == "":
			case f.Type == "string" || f.Type == "list":
				from += ", default " + strconv.Quote(f.Default)
			default:
				from += ", default " + f.Default
			}
			entries = append(entries, helpEntry{flag: "-" + f.Flag + " " + f.Type, from: from, usage: f.Usage})
		}
		if len(entries) > 0 {
			headings, sections = append(headings, g), append(sections, entries)
			anySetting = true
		}
	}

	width := 0
	for _, s := range sections {
		for _, e := range s {
			width = max(width, len(e.flag))
		}
	}
	for i, s := range sections {
		heading := headings[i]
		if heading == "" {
			heading = "Flags"
		}
		fmt.Fprintf(&b, "\n%s:\n", heading)
		for _, e := range s {
			line := "  " + e.flag
			if e.from != "" {
				line += strings.Repeat(" ", width-len(e.flag)+3) + e.from
			}
			fmt.Fprintf(&b, "%s\n        %s\n", line, e.usage)
		}
	}
	if anySetting {
		b.WriteString("\nEach setting may also come from the environment variable beside it; a flag wins over it.\n")
	}
	_, _ = io.WriteString(out, b.String())
}
