/* gsm-provider-exec: starts a provider command for the reaper
 *
 *   gsm-provider-exec PARENT_PID COMMAND [ARGUMENT…]
 *
 * Puts itself in a process group of its own, asks the kernel to kill it
 * when the thread that started it dies (PR_SET_PDEATHSIG), closes every
 * descriptor but the standard ones, and becomes COMMAND (searched in
 * PATH). It exists so that a reaper holding a large registry in memory can
 * start its commands with posix_spawn() (no copy of its address space)
 * and still give each one the group and the parent-death signal that a
 * child setup function would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int
main (int   argc,
      char *argv[])
{
  char *end = NULL;
  long  parent;

  if (argc < 3)
    {
      fprintf (stderr, "Usage: %s PARENT_PID COMMAND [ARGUMENT…]\n", argv[0]);
      return 127;
    }
  parent = strtol (argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || parent < 1)
    {
      fprintf (stderr, "%s: “%s” is not a process id\n", argv[0], argv[1]);
      return 127;
    }

  /* The starter sets the group too; whoever comes first wins. */
  if (setpgid (0, 0) != 0 && errno != EPERM)
    {
      fprintf (stderr, "%s: cannot make a process group: %s\n", argv[0], strerror (errno));
      return 127;
    }
  /* Dead with its starter; not started at all if that already happened. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid () != (pid_t) parent)
    return 127;

  closefrom (3);
  execvp (argv[2], argv + 2);
  fprintf (stderr, "%s: cannot run “%s”: %s\n", argv[0], argv[2], strerror (errno));
  return 127;
}
