import { Module } from '@nestjs/common';
import { PollerModule } from '../ingest/poller.module';
import { AdminController } from './admin.controller';
import { AdminTokenGuard } from './admin-token.guard';

@Module({ imports: [PollerModule], controllers: [AdminController], providers: [AdminTokenGuard] })
export class AdminModule {}
