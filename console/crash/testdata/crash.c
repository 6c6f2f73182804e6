/*
 * A tiny freestanding "firmware" whose only purpose is to give the crash
 * decoder's tests an ELF with real DWARF. It is never run.
 *
 * MARK(name) puts a global label "mark_<name>" at that point of the code.
 * The tests read each label's address from the ELF symbol table and expect
 * the decoder to name the function and the source line the marker is on:
 * the expected line comes from this file, not from DWARF. A marker's line
 * also carries "expect: FUNCTION" for the function the decoder must name.
 */

#define MARK(name) __asm__ volatile(".global mark_" #name "\nmark_" #name ":")

/* IRAM_ATTR: code the chip runs from internal RAM (see the linker scripts). */
#define IRAM_ATTR __attribute__((section(".iram1.text"), noinline))

volatile int sink;

/* Inlined into its caller: the decoder names the inlined function. */
static inline __attribute__((always_inline)) void clear_flag(int *p)
{
	MARK(inlined); p[1] = 0; /* expect: clear_flag */
}

__attribute__((noinline)) int store_through(int *p, int v)
{
	MARK(fault); *p = v; /* expect: store_through */
	clear_flag(p);
	return v + 1;
}

__attribute__((noinline)) int sensor_read(int *p)
{
	int r;
	r = store_through(p, 42); MARK(ret_sensor_read); /* expect: sensor_read */
	return r * 2;
}

IRAM_ATTR int isr_handler(int n)
{
	MARK(isr); sink = n; /* expect: isr_handler */
	return sensor_read((int *)0) + n;
}

__attribute__((noinline)) void app_main(void)
{
	for (int i = 0;; i++) {
		isr_handler(i); MARK(ret_app_main); /* expect: app_main */
	}
}

void app_start(void)
{
	app_main();
}
