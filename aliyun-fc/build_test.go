package main

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildScriptMakesCodeZip runs build.sh as a deployer would, with the
// zip command and without it (the mkzip.go fallback), and checks what FC
// gets: code.zip holding one executable, static linux/amd64 bootstrap.
func TestBuildScriptMakesCodeZip(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with what build.sh needs but zip.
	noZip := t.TempDir()
	for _, tool := range []string{"go", "rm", "chmod", "mkdir", "dirname"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(noZip, tool)); err != nil {
			t.Fatal(err)
		}
	}
	paths := map[string]string{"WithSystemPATH": os.Getenv("PATH"), "WithoutZip": noZip}
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath("zip"); err != nil && name == "WithSystemPATH" {
				t.Log("no zip command here: both runs use mkzip.go")
			}
			out := t.TempDir()
			cmd := exec.Command(sh, "build.sh", out)
			cmd.Env = append(os.Environ(), "PATH="+path)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build.sh: %v\n%s", err, b)
			}
			zr, err := zip.OpenReader(filepath.Join(out, "code.zip"))
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			var names []string
			for _, f := range zr.File {
				names = append(names, f.Name)
			}
			if len(names) != 1 || names[0] != "bootstrap" {
				t.Fatalf("code.zip holds %q, want bootstrap alone", names)
			}
			if mode := zr.File[0].Mode(); mode.Perm()&0o111 == 0 || !mode.IsRegular() {
				t.Errorf("bootstrap in code.zip has mode %v, want an executable file", mode)
			}
			rc, err := zr.File[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("bootstrap is not an ELF binary: %v", err)
			}
			if f.Machine != elf.EM_X86_64 || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
				t.Errorf("bootstrap is for %v/%v, want linux/amd64", f.OSABI, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("bootstrap has an ELF interpreter: it is not static")
				}
			}
			if syms, _ := f.Symbols(); len(syms) > 0 {
				t.Errorf("bootstrap has %d symbols: it was not stripped (-s -w)", len(syms))
			}
			if bytes.Contains(data, []byte(strings.TrimSuffix(mustGetwd(t), "/aliyun-fc"))) {
				t.Error("bootstrap contains the build directory: it was not built with -trimpath")
			}
		})
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
