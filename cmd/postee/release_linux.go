package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// dropStartPages drops postee's mapping of the read-only pages of its own
// executable (code and constant data) that start touched: the Rego
// compiler, YAML and start-up checks fault in about 30 MB of them, most
// never used again. The pages stay in the page cache and fault back in, at
// the cost of a minor fault, when the code runs again; nothing writable is
// touched (MADV_DONTNEED on a private writable mapping would lose its
// data). It returns the bytes of the mappings advised.
func dropStartPages() int64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[5]) != exe || len(f[1]) < 4 || f[1][1] != '-' {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED); errno == 0 {
			n += int64(end - start)
		}
	}
	return n
}
