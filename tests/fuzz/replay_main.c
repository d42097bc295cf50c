/*
 * Replays a corpus through a libFuzzer target without libFuzzer: for gcc and
 * sanitizer builds in CI. Link it with one fuzz_*.c; do NOT link it into a
 * -fsanitize=fuzzer build (libFuzzer brings its own main).
 *
 *   fuzz-replay DIR... FILE...   every regular file in each DIR (sorted), and each FILE
 *
 * Prints "fuzz-replay: N passed, M failed" (M counts unreadable inputs); a
 * crash aborts under the sanitizer. Exit status 0 only when M is 0 and N > 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_FILE (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int passed, failed;

static void replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf = NULL;
	FILE *f = NULL;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > REPLAY_MAX_FILE)
		goto fail;
	/* a copy of exactly size bytes, so ASan sees reads past the input */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	f = fopen(path, "rb");
	if (!buf || !f || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		goto fail;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
	free(buf);
	passed++;
	return;
fail:
	fprintf(stderr, "fuzz-replay: cannot read %s\n", path);
	if (f)
		fclose(f);
	free(buf);
	failed++;
}

static int only_files(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static void replay_dir(const char *dir)
{
	struct dirent **names;
	char path[4096];
	struct stat st;
	int i, n = scandir(dir, &names, only_files, alphasort);

	if (n < 0) {
		fprintf(stderr, "fuzz-replay: cannot list %s\n", dir);
		failed++;
		return;
	}
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) <
			    sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay_file(path);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	struct stat st;
	int i;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			replay_dir(argv[i]);
		else
			replay_file(argv[i]);
	}
	printf("fuzz-replay: %d passed, %d failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
