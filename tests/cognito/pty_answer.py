#!/usr/bin/python3
"""pty_answer.py TRANSCRIPT CMD [ARG...] — runs CMD on a new pseudo-terminal (stdin, stdout
and stderr), as a person at a terminal would, and answers its prompts:

  a line ending in "Email: "        → $PTY_EMAIL
  a line starting "Password for "   → $PTY_PASSWORD (after a pause, so a program that turns
                                      echo off only then is not given the benefit of a race)

Writes everything the terminal showed (prompts, and whatever the terminal echoed of the
answers) to TRANSCRIPT, and exits with CMD's exit status (3 when it does not end in 120 s).
"""
import os
import pty
import select
import signal
import sys
import time


def main():
    transcript_path, argv = sys.argv[1], sys.argv[2:]
    answers = [(b"Email: ", os.environ["PTY_EMAIL"]),
               (b"Password for ", os.environ["PTY_PASSWORD"])]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    seen = b""
    scan = 0  # where the next prompt is looked for
    deadline = time.monotonic() + 120
    status = None
    while status is None and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if not data:
                _, status = os.waitpid(pid, 0)
            seen += data
        at = seen.find(answers[0][0], scan) if answers else -1
        if at >= 0:
            prompt, answer = answers.pop(0)
            scan = at + len(prompt)
            time.sleep(0.5)
            os.write(fd, answer.encode() + b"\r")
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with open(transcript_path, "wb") as f:
        f.write(seen)
    return 3 if status is None else os.waitstatus_to_exitcode(status)

if __name__ == "__main__":
    sys.exit(main())
