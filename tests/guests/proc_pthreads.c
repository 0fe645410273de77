/* Four pthreads with a mutex, a condition variable and join: each adds to
 * a shared counter under the mutex, the main thread waits on the condvar
 * until all four have started, then releases them. */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>

#define THREADS 4
#define ROUNDS 100000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static int started, go;
static long counter;
static long per_thread[THREADS];

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_signal(&started_cv);
    while (!go)
        pthread_cond_wait(&go_cv, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        per_thread[id]++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)(intptr_t)(id * 10 + 1);
}

int main(void)
{
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            puts("pthread_create failed");
            return 1;
        }
    pthread_mutex_lock(&lock);
    while (started < THREADS)
        pthread_cond_wait(&started_cv, &lock);
    printf("all %d threads started\n", started);
    go = 1;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(threads[i], &ret);
        printf("thread %d returned %ld after %ld rounds\n", i, (long)(intptr_t)ret, per_thread[i]);
    }
    printf("counter=%ld\n", counter);
    return counter == (long)THREADS * ROUNDS ? 0 : 1;
}
