// Entry of a runner child process. It stays here, beside runner-launch.ts, because that file
// starts the runner by this path; the runner's code lives in runner/.
import './runner/runner-main.ts'
