function mpc = case3_loop
%CASE3_LOOP  Three buses in a loop: a cheap and a dear generator, the load at bus 3,
%   branch 1-3 limited to 80 MW (GridLedger's hand-solved loop, tests/test_zonal.py).
mpc.version = '2';
mpc.baseMVA = 100;

%% bus data
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0	0	1	1	0	345	1	1.1	0.9;
	2	2	0	0	0	0	1	1	0	345	1	1.1	0.9;
	3	1	150	0	0	0	1	1	0	345	1	1.1	0.9;
];

%% generator data
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	0	0	300	-300	1	100	1	150	0;
	2	0	0	300	-300	1	100	1	150	0;
];

%% branch data
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0	0.1	0	150	150	150	0	0	1	-360	360;
	1	3	0	0.1	0	80	80	80	0	0	1	-360	360;
	2	3	0	0.1	0	150	150	150	0	0	1	-360	360;
];

%% generator cost data
%	2	startup	shutdown	n	c(n-1)	...	c0
mpc.gencost = [
	2	0	0	2	10	0;
	2	0	0	2	20	0;
];
