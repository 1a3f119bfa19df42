// Command gomodzip lays out a module as a Go module proxy serves it, so that
// `go get` can fetch a module that is not published, exactly as it would fetch
// a published one (GOPROXY=file://DIR):
//
//	gomodzip -dir clients/go -version v0.1.0 -out DIR
//
// writes DIR/MODULE/@v/{list,VERSION.info,VERSION.mod,VERSION.zip}, the zip
// made by golang.org/x/mod/zip, which applies the rules the go command does
// (no nested modules, no vendor folder, size limits).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	dir := flag.String("dir", "", "the module's folder (holding go.mod)")
	version := flag.String("version", "", "the version to serve it as, e.g. v0.1.0")
	out := flag.String("out", "", "the proxy's root folder")
	flag.Parse()
	if err := run(*dir, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gomodzip:", err)
		os.Exit(1)
	}
}

func run(dir, version, out string) error {
	if dir == "" || version == "" || out == "" {
		return fmt.Errorf("-dir, -version and -out are required")
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	path := modfile.ModulePath(goMod)
	if path == "" {
		return fmt.Errorf("%s/go.mod: no module line", dir)
	}
	mod := module.Version{Path: path, Version: version}
	if err := module.Check(path, version); err != nil {
		return err
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	versions := filepath.Join(out, escaped, "@v")
	if err := os.MkdirAll(versions, 0o755); err != nil {
		return err
	}
	archive, err := os.Create(filepath.Join(versions, version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(archive, mod, dir); err != nil {
		archive.Close()
		return err
	}
	if err := archive.Close(); err != nil {
		return err
	}
	info, err := json.Marshal(map[string]any{"Version": version, "Time": time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	for name, content := range map[string][]byte{
		version + ".mod":  goMod,
		version + ".info": info,
		"list":            []byte(version + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(versions, name), content, 0o644); err != nil {
			return err
		}
	}
	fmt.Println(filepath.Join(versions, version+".zip"))
	return nil
}
