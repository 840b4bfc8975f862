/*
 * proc.h: the benchmark's processes and files: a private temporary directory, spawning and
 * stopping server processes (their output goes to a log file), reading a process's resident
 * memory, a free TCP port, and a tokens file for secretd.
 *
 * What it does not do: speak nng. Thread safety: call from the main thread only (spawning
 * and waiting for children is process-wide state).
 */
#ifndef LOADGEN_PROC_H
#define LOADGEN_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Create a fresh 0700 directory under $TMPDIR (else /tmp) into buf. Returns 0 or -1. */
int proc_tmpdir(char *buf, size_t len);

/* Remove a directory tree (best effort; the benchmark's own temporary files only). */
void proc_rmtree(const char *dir);

/* Start argv[0] (a path, or a name looked up in PATH) with stdin from /dev/null and stdout+stderr
 * appended to log_path. Returns 0 with *pidp, or -1 with errno set. */
int proc_spawn(char *const argv[], const char *log_path, pid_t *pidp);

/* Whether pid has exited (reaped; *statusp holds its wait status). */
bool proc_exited(pid_t pid, int *statusp);

/* SIGTERM, then wait up to timeout_s; SIGKILL after that. Returns 0 when the process exited
 * by itself with status 0, -1 otherwise (*statusp holds the wait status). */
int proc_stop(pid_t pid, double timeout_s, int *statusp);

/* Describe a wait status ("exit 1", "killed by signal 11") into buf; returns buf. */
const char *proc_status_str(int status, char *buf, size_t len);

/* VmRSS of pid in KiB, or -1. */
long proc_rss_kib(pid_t pid);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int proc_free_port(void);

/* A random token of 32 hex digits into buf (len >= 33). Returns 0 or -1. */
int proc_random_token(char *buf, size_t len);

/* Write a tokens file (0600) with one line `admin <id> <sha256 hex of token>`. 0 or -1. */
int proc_write_tokens(const char *path, const char *id, const char *token);

/* Copy the last `lines` lines of a file to out, indented (for a failing server's log). */
void proc_log_tail(const char *path, FILE *out, int lines);

/* The directory of this executable into buf. Returns 0 or -1. */
int proc_self_dir(char *buf, size_t len);

#endif /* LOADGEN_PROC_H */
