// slimtrain: the executable. All work happens in launcher::run.
#include "launcher/run.h"

int main(int argc, char** argv) { return slim::launcher::run(argc, argv); }
