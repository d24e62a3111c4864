# Copyright (c) mmsimmm contributors. All rights reserved.
