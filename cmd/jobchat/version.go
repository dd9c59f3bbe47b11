package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the version a release build stamps in:
//
//	go build -trimpath -ldflags "-s -w -X main.version=v1.4.0" -o jobchat ./cmd/jobchat
//
// Empty in other builds, which report what Go recorded instead.
var version string

// buildVersion describes this build: the stamped version, else the module
// version and the VCS revision Go recorded (a plain go build in a git
// checkout records them; -buildvcs=false or go run does not), then the Go
// release and platform.
func buildVersion() string {
	return describeBuild(version, debug.ReadBuildInfo)
}

func describeBuild(stamped string, read func() (*debug.BuildInfo, bool)) string {
	platform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if stamped != "" {
		return stamped + " (" + platform + ")"
	}
	info, ok := read()
	if !ok {
		return "unknown (" + platform + ")"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	parts := []string{v}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "+dirty"
		}
		parts = append(parts, rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	if info.GoVersion != "" {
		platform = info.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	return strings.Join(parts, " ") + " (" + platform + ")"
}
