/*
 * Commands of s3d that live outside csrc/s3d.c. Each takes the arguments
 * after the command name (argv[0] is the command) and returns the exit
 * code: 0 success, 1 runtime error (printed), 2 usage error; push-blob and
 * push: 128 + the signal after SIGINT or SIGTERM (the upload cancelled).
 */
#ifndef S3D_CLI_CMD_H
#define S3D_CLI_CMD_H

/* csrc/cli/push.c: the presigned upload client (docs/api.md). */
int s3d_cmd_push_blob(int argc, char **argv);
int s3d_cmd_push(int argc, char **argv);

/* csrc/cli/admin.c: sessions of a registry configuration. */
int s3d_cmd_gc(int argc, char **argv);
int s3d_cmd_sessions(int argc, char **argv);

#endif
